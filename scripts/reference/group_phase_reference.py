#!/usr/bin/env python3
"""Dev-only: scipy reference for the instantaneous phase of pipelines/group/phase.ts.

Writes pipelines/group/fixtures/reference-phase.json. Not run by the tests or CI; the JSON is
committed. Re-run it by hand when the data or the definition changes:

    /opt/attune-ref/bin/python scripts/reference/group_phase_reference.py

It shares no code with Attune. Two parts:

1. Real RR (../shared/data/rr): for each recording below and each window start, beat time of
   RR[i] = sum(RR[0..i]) ms; the knots are the beats with time in [start - 10 s, start + 74 s);
   x = scipy.interpolate.CubicSpline(knots, RR, bc_type="natural") at start + k * 250 ms,
   k < 256 (4 Hz, 64 s), then
     b, a = scipy.signal.butter(2, [0.04, 0.26], btype="bandpass", fs=4)
     y = scipy.signal.filtfilt(b, a, x - mean(x))            (scipy defaults: odd padding, 15)
     phase = numpy.angle(scipy.signal.hilbert(y))
   The fixture holds b, a, and per window x and phase (10 significant digits).

2. The edge trim: noisy sinusoids x(t) = sin(2 pi f t + phi0) + noise (sd 0.3) plus a random
   linear trend, f in 0.05, 0.10, 0.15, 0.20, 0.25 Hz, phi0 uniform, 200 draws each (seeded), the
   same filter and Hilbert transform; the absolute error of the phase against the true phase
   2 pi f t + phi0 - pi/2 (the analytic phase of a sine) per sample; the fixture records its
   95th percentile by distance from the nearer edge, in seconds, per frequency.
"""
import json
from pathlib import Path

import numpy as np
import scipy
from scipy.interpolate import CubicSpline
from scipy.signal import butter, filtfilt, hilbert

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data" / "rr"
OUT = ROOT / "pipelines" / "group" / "fixtures" / "reference-phase.json"
FS = 4.0
N = 256
RECORDINGS = [
    "meditation_M2_metronomic_0p25Hz.rr_ms.txt",
    "meditation_Y3med_kundalini_slowbreath.rr_ms.txt",
    "nsrdb_16272_seg116_5min.rr_ms.txt",
    "pyhrv_SampleNNISeriesLong_60min.rr_ms.txt",
]
STARTS_S = [60, 120, 180]

b, a = butter(2, [0.04, 0.26], btype="bandpass", fs=FS)


def phase_of(x):
    y = filtfilt(b, a, x - np.mean(x))
    return np.angle(hilbert(y))


def sig(v):
    return [float(f"{x:.10g}") for x in v]


windows = []
for name in RECORDINGS:
    rr = np.loadtxt(DATA / name)
    t = np.cumsum(rr)
    for start_s in STARTS_S:
        start = start_s * 1000.0
        sel = (t >= start - 10_000) & (t < start + 74_000)
        spline = CubicSpline(t[sel], rr[sel], bc_type="natural")
        grid = start + np.arange(N) * 1000.0 / FS
        x = spline(grid)
        windows.append({"recording": name, "startMs": start, "x": sig(x), "phase": sig(phase_of(x))})

rng = np.random.default_rng(20261202)
tt = np.arange(N) / FS
dist_s = np.minimum(np.arange(N), N - 1 - np.arange(N)) / FS
edge = {}
for f in [0.05, 0.10, 0.15, 0.20, 0.25]:
    errs = []
    for _ in range(200):
        phi0 = rng.uniform(0, 2 * np.pi)
        x = np.sin(2 * np.pi * f * tt + phi0) + 0.3 * rng.standard_normal(N) + rng.uniform(-1, 1) * tt / tt[-1]
        e = np.angle(np.exp(1j * (phase_of(x) - (2 * np.pi * f * tt + phi0 - np.pi / 2))))
        errs.append(np.abs(e))
    errs = np.array(errs)
    rows = []
    for d in [0, 2, 4, 6, 8, 10, 12, 16, 20, 24, 31.75]:
        m = np.abs(dist_s - d) < 0.01 if d < 31 else dist_s >= 31.5
        rows.append({"distanceFromEdgeS": d, "p95AbsErrorRad": round(float(np.percentile(errs[:, m], 95)), 4)})
    inner = dist_s >= 8
    edge[f"{f:.2f}"] = {"byDistance": rows, "p95AbsErrorRadKept": round(float(np.percentile(errs[:, inner], 95)), 4)}

OUT.parent.mkdir(parents=True, exist_ok=True)
body = {
    "generator": "scripts/reference/group_phase_reference.py",
    "scipy": scipy.__version__,
    "numpy": np.__version__,
    "sampleRateHz": FS,
    "sampleCount": N,
    "b": [float(v) for v in b],
    "a": [float(v) for v in a],
    "windows": windows,
    "edgeError": edge,
}
with OUT.open("w") as fh:
    fh.write("{\n")
    keys = list(body)
    for i, k in enumerate(keys):
        sep = "," if i < len(keys) - 1 else ""
        if k == "windows":
            fh.write('  "windows": [\n')
            for j, w in enumerate(body[k]):
                fh.write("    " + json.dumps(w) + ("," if j < len(body[k]) - 1 else "") + "\n")
            fh.write("  ]" + sep + "\n")
        else:
            fh.write(f"  {json.dumps(k)}: {json.dumps(body[k])}{sep}\n")
    fh.write("}\n")
print(f"wrote {OUT.relative_to(ROOT)}: {len(windows)} windows")
for f, v in edge.items():
    print(f, v["p95AbsErrorRadKept"], [(r["distanceFromEdgeS"], r["p95AbsErrorRad"]) for r in v["byDistance"]])
