#!/usr/bin/env python3
"""Dev-only: NeuroKit2 "Kubios" artifact-correction reference for pipelines/hrv/artifacts.ts.

Writes pipelines/hrv/fixtures/reference-artifacts.json. Not run by the tests or CI; the JSON is
committed. Re-run it by hand when the data, the injection or the reference changes:

    python3 -m venv /tmp/ref-venv && /tmp/ref-venv/bin/pip install neurokit2==0.3.0 numpy pandas
    /tmp/ref-venv/bin/python scripts/reference/make_artifact_fixtures.py

(on the project's dev machine the venv is /opt/attune-ref: /opt/attune-ref/bin/python ...).

For every ../shared/data/rr/*.rr_ms.txt (RR in ms, one per line; beat time of RR[i] =
sum(RR[0..i]), the first R peak at time 0):

1. Ectopic injection (deterministic, so that the TypeScript tests rebuild the same series from
   the committed positions): 2 % of the beats (round(0.02 * n)) become premature ectopic beats.
   For an ectopic beat closing interval k, with prematurity p drawn uniformly from [0.20, 0.40]:
       RR'[k]   = RR[k] * (1 - p)          (the beat arrives p of an interval early)
       RR'[k+1] = RR[k+1] + RR[k] * p      (full compensatory pause: the next beat is on time)
   so the pair sums to exactly two normal intervals and every other beat time is unchanged.
   Positions k are drawn from [2, n - 4] with at least MIN_GAP beats between two ectopic beats
   (isolated ectopy, not bigeminy), by numpy.random.default_rng(SEED + crc32(file name)).
   The TypeScript side recomputes RR' with the same two IEEE operations, so the series match
   bit for bit (checked by `rrInjectedSumMs`).

2. NeuroKit2 `signal_fixpeaks(peaks, sampling_rate=1_000_000, method="kubios", iterative=True)`
   (peaks in integer microseconds, so its integer peak arithmetic costs < 1 us) on
   a) the clean record, whole: which beats it changes (moved, deleted or added peaks);
   b) the injected record, whole: whether each injected pair was corrected as a pair (the
      premature beat gone, the two normal beats around it kept, exactly one beat between them),
      and RMSSD per window on the corrected series;
   c) the injected record, window by window (each 64 s window's beats cleaned on their own, as
      Attune cleans them): RMSSD per window.
   Windows: [start, start + 64 s) for start = 0, 5, 10, ... s while start + 64 s <= last beat
   time (the stream's 5 s hop); a beat belongs to a window when its time does; the window's
   first interval is opened by the beat before it. RMSSD = sqrt(mean(diff(rr)^2)) over the
   window's intervals. The clean record's RMSSD per window (no cleaning) is stored as the truth.
"""
import json
import re
import sys
import zlib
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import neurokit2 as nk

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data" / "rr"
OUT = REPO / "pipelines" / "hrv" / "fixtures" / "reference-artifacts.json"
WINDOW_MS = 64_000.0
HOP_MS = 5_000.0
ECTOPIC_SHARE = 0.02
PREMATURITY = (0.20, 0.40)
MIN_GAP = 5
SEED = 20191640  # from the paper's DOI suffix (10.1080/03091902.2019.1640306); any fixed value would do
US = 1000.0  # microseconds per millisecond


def inject(rr: np.ndarray, name: str):
    rng = np.random.default_rng(SEED + zlib.crc32(name.encode()))
    n = len(rr)
    want = int(round(ECTOPIC_SHARE * n))
    chosen: list[int] = []
    candidates = rng.permutation(np.arange(2, n - 3))
    for k in candidates:
        if len(chosen) == want:
            break
        if all(abs(int(k) - c) > MIN_GAP for c in chosen):
            chosen.append(int(k))
    chosen.sort()
    p = rng.uniform(PREMATURITY[0], PREMATURITY[1], size=len(chosen))
    out = rr.copy()
    for k, pk in zip(chosen, p):
        early = rr[k] * pk
        out[k] = rr[k] * (1 - pk)
        out[k + 1] = rr[k + 1] + early
    return out, chosen, [float(x) for x in p]


def to_peaks_us(rr_ms: np.ndarray, start_ms: float = 0.0) -> np.ndarray:
    return np.round((start_ms + np.concatenate([[0.0], np.cumsum(rr_ms)])) * US).astype(np.int64)


def kubios(peaks_us: np.ndarray) -> np.ndarray:
    _, clean = nk.signal_fixpeaks(peaks_us, sampling_rate=1_000_000, method="kubios", iterative=True, show=False)
    return np.asarray(clean, dtype=np.int64)


def changed_beats(before: np.ndarray, after: np.ndarray) -> dict:
    b, a = set(before.tolist()), set(after.tolist())
    return {"peaksRemovedOrMoved": len(b - a), "peaksAddedOrMovedTo": len(a - b)}


def windows_of(t_ms: np.ndarray):
    starts = []
    s = 0.0
    while s + WINDOW_MS <= t_ms[-1]:
        starts.append(s)
        s += HOP_MS
    return starts


def rmssd(rr: np.ndarray) -> float | None:
    if len(rr) < 2:
        return None
    return round(float(np.sqrt(np.mean(np.diff(rr) ** 2))), 6)


def window_rmssd(peaks_us: np.ndarray, start_ms: float) -> float | None:
    times_ms = peaks_us[1:] / US
    rr = np.diff(peaks_us) / US
    sel = (times_ms >= start_ms) & (times_ms < start_ms + WINDOW_MS)
    return rmssd(rr[sel])


def pair_corrected(clean_peaks_us: np.ndarray, t_ms: np.ndarray, k: int) -> bool:
    """Injected ectopic beat closing interval k: corrected as a pair?"""
    before = int(round(t_ms[k - 1] * US))
    premature = int(round(t_ms[k] * US))
    after = int(round(t_ms[k + 1] * US))
    s = set(clean_peaks_us.tolist())
    if premature in s or before not in s or after not in s:
        return False
    between = np.count_nonzero((clean_peaks_us > before) & (clean_peaks_us < after))
    return between == 1


def main() -> int:
    if not DATA.is_dir():
        print(f"data folder not found: {DATA}", file=sys.stderr)
        return 1
    recordings = {}
    for f in sorted(DATA.glob("*.rr_ms.txt")):
        rr = np.loadtxt(f, dtype=float)
        t = np.cumsum(rr)
        peaks_clean_in = to_peaks_us(rr)
        nk_clean = kubios(peaks_clean_in)

        rr_inj, positions, prematurity = inject(rr, f.name)
        t_inj = np.cumsum(rr_inj)
        peaks_inj = to_peaks_us(rr_inj)
        nk_inj = kubios(peaks_inj)
        pairs_ok = [pair_corrected(nk_inj, t_inj, k) for k in positions]

        windows = []
        for start in windows_of(t):
            sel = np.flatnonzero((t_inj >= start) & (t_inj < start + WINDOW_MS))
            # The window's beats with the beat that opens its first interval.
            first = sel[0]
            opening = t_inj[first] - rr_inj[first]
            peaks_w = to_peaks_us(rr_inj[sel], opening)
            nk_w = kubios(peaks_w)
            clean_sel = (t >= start) & (t < start + WINDOW_MS)
            windows.append(
                {
                    "startMs": start,
                    "cleanRmssdMs": rmssd(rr[clean_sel]),
                    "injectedRmssdMs": rmssd(rr_inj[sel]),
                    "kubiosWholeRmssdMs": window_rmssd(nk_inj, start),
                    "kubiosWindowRmssdMs": window_rmssd(nk_w, start),
                }
            )

        recordings[f.name] = {
            "beatCount": int(len(rr)),
            "kubiosOnClean": changed_beats(peaks_clean_in, nk_clean),
            "injection": {
                "positions": positions,
                "prematurity": prematurity,
                "rrInjectedSumMs": float(np.sum(rr_inj)),
            },
            "kubiosOnInjected": {
                **changed_beats(peaks_inj, nk_inj),
                "prematureBeatsMoved": int(sum(int(round(t_inj[k] * US)) not in set(nk_inj.tolist()) for k in positions)),
                "pairsCorrectedAsPair": int(np.sum(pairs_ok)),
                "pairsMissedOrMiscorrected": [k for k, ok in zip(positions, pairs_ok) if not ok],
            },
            "windows": windows,
        }
        print(
            f"{f.name}: n={len(rr)} kubios changes on clean {recordings[f.name]['kubiosOnClean']}, "
            f"pairs {int(np.sum(pairs_ok))}/{len(positions)}",
            file=sys.stderr,
        )

    doc = {
        "note": (
            "NeuroKit2 Kubios-method (Lipponen & Tarvainen 2019) reference for artifact cleaning, made by "
            f"scripts/reference/make_artifact_fixtures.py on {date.today().isoformat()} with NeuroKit2 "
            f"{nk.__version__}, numpy {np.__version__}, pandas {pd.__version__}: "
            "signal_fixpeaks(peaks_us, sampling_rate=1e6, method='kubios', iterative=True). "
            "Injection: round(2 %) of beats premature by p ~ U[0.20, 0.40] with full compensatory pause "
            "(RR'[k] = RR[k](1-p), RR'[k+1] = RR[k+1] + RR[k]p), positions at least "
            f"{MIN_GAP + 1} beats apart, numpy default_rng({SEED} + crc32(file name)). "
            "Windows: [start, start + 64 s) every 5 s; RMSSD over the window's intervals."
        ),
        "neurokit2Version": nk.__version__,
        "windowMs": WINDOW_MS,
        "hopMs": HOP_MS,
        "ectopicShare": ECTOPIC_SHARE,
        "prematurity": list(PREMATURITY),
        "recordings": recordings,
    }
    # One line per window keeps the file small and its diffs readable.
    text = json.dumps(doc, indent=1)
    text = re.sub(r"\{\s+(\"startMs\"[^{}]*?)\s+\}", lambda m: "{" + re.sub(r"\s+", " ", m.group(1)) + "}", text)
    OUT.write_text(text + "\n")
    print(f"wrote {OUT} ({len(recordings)} recordings)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
