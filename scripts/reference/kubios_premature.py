#!/usr/bin/env python3
"""Dev-only: NeuroKit2's Kubios correction (Lipponen & Tarvainen 2019) of the series written by
scripts/reference/export-premature-rr.ts (premature beats without a compensatory pause). For
each: how many premature beats NeuroKit2 0.3.0 `signal_fixpeaks(method="kubios", iterative=True)`
moves or deletes, and the RMSSD of its corrected series. Prints; writes nothing.

    python3 -m venv /tmp/ref-venv && /tmp/ref-venv/bin/pip install neurokit2==0.3.0 numpy pandas
    /tmp/ref-venv/bin/python scripts/reference/kubios_premature.py /tmp/premature-rr.json
"""
import json
import sys

import neurokit2 as nk
import numpy as np


def rmssd(rr: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.diff(rr) ** 2)))


def main() -> int:
    for s in json.load(open(sys.argv[1] if len(sys.argv) > 1 else "/tmp/premature-rr.json")):
        rr = np.asarray(s["rrMs"], dtype=float)
        peaks = np.concatenate([[0], np.cumsum(np.rint(rr * 1000).astype(np.int64))])
        _, fixed = nk.signal_fixpeaks(peaks, sampling_rate=1_000_000, method="kubios", iterative=True, show=False)
        fixed = np.asarray(fixed)
        kept = set(fixed.tolist())
        # The premature beat closes interval k: peak k + 1.
        moved = sum(1 for k in s["positions"] if int(peaks[k + 1]) not in kept)
        print(f"{s['label']}: raw RMSSD {rmssd(rr):.1f} ms; NeuroKit2 {nk.__version__} Kubios moved {moved} of {len(s['positions'])}, RMSSD {rmssd(np.diff(fixed) / 1000):.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
