#!/usr/bin/env python3
"""Dev-only: NeuroKit2's Kubios correction (Lipponen & Tarvainen 2019) on the artifact-free
synthetic RR series of pipelines/hrv/artifacts.test.ts, exported by export-synthetic-rr.ts (see
its header for the two commands). For each series: the R peaks (integer microseconds, first at 0)
NeuroKit2 0.3.0 `signal_fixpeaks(method="kubios", iterative=True)` moves or deletes on the whole
series. Every one is a false correction: the series have no artifact. Prints one line per touched
series and a summary; writes nothing."""
import json
import sys

import neurokit2 as nk
import numpy as np


def main() -> int:
    series = json.load(open(sys.argv[1] if len(sys.argv) > 1 else "/tmp/synthetic-rr.json"))
    touched = 0
    beats = 0
    total = 0
    for s in series:
        rr = np.asarray(s["rrMs"], dtype=float)
        peaks = np.concatenate([[0], np.cumsum(np.rint(rr * 1000).astype(np.int64))])
        _, fixed = nk.signal_fixpeaks(peaks, sampling_rate=1_000_000, method="kubios", iterative=True, show=False)
        changed = len(set(peaks.tolist()) - set(np.asarray(fixed).tolist()))
        total += len(rr)
        if changed:
            touched += 1
            beats += changed
            print(f"{s['label']}: {changed} peaks moved or deleted")
    print(f"NeuroKit2 {nk.__version__} Kubios: {touched} of {len(series)} artifact-free series touched, {beats} of {total} beats moved or deleted")
    return 0


if __name__ == "__main__":
    sys.exit(main())
