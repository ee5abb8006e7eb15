#!/usr/bin/env python3
"""Dev-only: reference time-domain HRV values for pipelines/hrv tests, from NeuroKit2.

Writes pipelines/hrv/fixtures/reference-hrv.json. Not run by the tests or CI; the JSON is
committed. Re-run it by hand when the data or the definitions change:

    python3 -m venv /tmp/hrv-venv && /tmp/hrv-venv/bin/pip install neurokit2
    /tmp/hrv-venv/bin/python scripts/reference/make_hrv_fixtures.py

For every ../shared/data/rr/*.rr_ms.txt (RR in ms, one per line) it computes, with
neurokit2.hrv_time({"RRI": rr_ms, "RRI_Time": beat_time_s}):
  - the whole recording;
  - fixed 64 s windows [start, start + 64 s) for start in WINDOW_STARTS_S, where a beat belongs
    to a window when its time lies in it. Beat time of RR[i] = sum(RR[0..i]) (the R peak that
    closes the interval; the recording's first R peak is time 0).
No artifact correction or range filtering is applied (the Attune side of the comparison does
none either): the recordings are already NN series.
"""
import json
import sys
from datetime import date
from pathlib import Path

import numpy as np
import neurokit2 as nk

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data" / "rr"
OUT = REPO / "pipelines" / "hrv" / "fixtures" / "reference-hrv.json"
WINDOW_MS = 64_000
WINDOW_STARTS_S = [0, 64, 128, 256]


def metrics(rr_ms: np.ndarray, beat_time_ms: np.ndarray) -> dict:
    res = nk.hrv_time({"RRI": rr_ms, "RRI_Time": beat_time_ms / 1000.0}, show=False)
    row = res.iloc[0]
    n_diff = len(rr_ms) - 1
    pnn50_nk = float(row["HRV_pNN50"])
    mean_nn = float(row["HRV_MeanNN"])
    return {
        "beatCount": int(len(rr_ms)),
        "meanRrMs": mean_nn,
        "meanHrBpm": 60000.0 / mean_nn,
        "rmssdMs": float(row["HRV_RMSSD"]),
        "sdnnMs": float(row["HRV_SDNN"]),
        # NeuroKit2 divides NN50 by the number of intervals (len(diff) + 1); Attune divides by
        # the number of successive differences. Both are recorded; the second is derived
        # exactly from the first (all differences here are successive).
        "pnn50PctNeurokit": pnn50_nk,
        "pnn50Pct": pnn50_nk * (n_diff + 1) / n_diff,
    }


def main() -> int:
    if not DATA.is_dir():
        print(f"data folder not found: {DATA}", file=sys.stderr)
        return 1
    files = sorted(DATA.glob("*.rr_ms.txt"))
    recordings = {}
    for f in files:
        rr = np.loadtxt(f, dtype=float)
        t = np.cumsum(rr)
        windows = []
        for start_s in WINDOW_STARTS_S:
            start = start_s * 1000.0
            sel = (t >= start) & (t < start + WINDOW_MS)
            if sel.sum() < 3:
                continue
            windows.append({"startMs": start, "endMs": start + WINDOW_MS, **metrics(rr[sel], t[sel])})
        recordings[f.name] = {"whole": metrics(rr, t), "windows": windows}
    doc = {
        "note": (
            "Reference time-domain HRV from NeuroKit2 "
            f"{nk.__version__} (neurokit2.hrv_time with {{'RRI': rr_ms, 'RRI_Time': beat_time_s}}), "
            "made by scripts/reference/make_hrv_fixtures.py on "
            f"{date.today().isoformat()}. Beat time of RR[i] = sum(RR[0..i]) ms; a beat is in "
            "window [startMs, endMs) when its time is. No artifact correction or range filtering "
            "on either side. SDNN is NeuroKit2's np.nanstd(ddof=1); RMSSD sqrt(mean(diff^2)); "
            "meanHrBpm = 60000 / MeanNN; pnn50Pct = NN50 / number of differences * 100 "
            "(pnn50PctNeurokit is NeuroKit2's own, over len(diff) + 1)."
        ),
        "neurokit2Version": nk.__version__,
        "numpyVersion": np.__version__,
        "windowMs": WINDOW_MS,
        "recordings": recordings,
    }
    OUT.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {OUT} ({len(recordings)} recordings)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
