#!/usr/bin/env python3
"""Dev-only: independent reference coherence ratio and peak frequency for pipelines/hrv tests.

Writes pipelines/hrv/fixtures/reference-coherence.json. Not run by the tests or CI; the JSON is
committed. Re-run it by hand when the data or the definition changes:

    python3 -m venv /opt/attune-ref && /opt/attune-ref/bin/pip install numpy scipy neurokit2==0.3.0
    /opt/attune-ref/bin/python scripts/reference/coherence_reference.py

It shares no code with Attune: it is the published coherence ratio (McCraty, Atkinson,
Tomasino & Bradley 2009, "The coherent heart", Integral Review 5(2)) written directly with
scipy, with the spectrum sampled on a grid ~500 times finer than Attune's FFT grid, so band
sums over it are the band integrals to within 0.05 % of the 0.030 Hz band:

  For every ../shared/data/rr/*.rr_ms.txt (RR in ms, one per line, as recorded: no artifact
  correction here), beat time of RR[i] = sum(RR[0..i]) ms, and 64 s windows [start, start + 64 s)
  for start = 0, 5, 10, ... s while start + 64 s <= the last beat time (the windows
  pipelines/hrv/reference.test.ts computes). A beat is in a window when its time is.
    1. tachogram: scipy.interpolate.CubicSpline(beat times, RR, bc_type="natural") sampled at
       4 Hz at start + k * 250 ms, k < 256; before the window's first beat and after its last the
       value is held at the edge beat's RR (the samples' times are clipped to the beat span)
       rather than extrapolated;
    2. detrend: a straight line fitted by least squares and subtracted, in two variants:
         - "taper-weighted" (the definition Attune uses, and what the test compares): the fit
           weights each sample by the square of the Hann window that follows, i.e. it is the
           least-squares line of the tapered signal. A plain fit leaks the unweighted mean and
           slope of a slow oscillation (3-4 cycles in 64 s) into the 0.003-0.03 Hz band and
           moves CR by up to 8 % with the breathing phase; the weighted fit leaves what the
           taper sees of the oscillation alone. numpy.polyfit(u, x, 1, w=hann) (polyfit squares
           its weights);
         - "plain" (scipy.signal.detrend(type="linear"), as Kubios and NeuroKit2 do): recorded
           alongside so that the effect of the choice on real data can be read off;
    3. periodogram: scipy.signal.periodogram(x, fs=4, window="hann" (periodic), nfft=2**18,
       detrend=False, scaling="density"), one-sided, density in ms^2/Hz;
    4. peak frequency: the frequency of the largest periodogram value with 0.04 <= f <= 0.26 Hz;
    5. peak power: sum of psd * df over |f - peak| <= 0.015 Hz; total power: sum over
       0.0033 <= f <= 0.4 Hz; CR = peak / (total - peak).
Windows with fewer than 4 beats get null values (no spectrum worth the name).

The same is computed (taper-weighted detrend) on the record after NeuroKit2's implementation of
the Kubios artifact correction (Lipponen & Tarvainen 2019), whole record,
signal_fixpeaks(peaks_us, sampling_rate=1e6, method="kubios", iterative=True) with R peaks in
integer microseconds (first peak at 0): fields crKubios, peakHzKubios, beatCountKubios. Attune
cleans each window before its spectrum; this whole-record correction reads beats after the
window that a live stream does not have when it closes the window.

The causal Kubios reference (fields crKubiosCausal, peakHzKubiosCausal, beatCountKubiosCausal;
the one pipelines/hrv/reference.test.ts holds the product path to, see fixtures/README.md): per
window, the same NeuroKit2 call on exactly the beats Attune's cleaning (cleanRrInto) reads for the
window: the window's beats plus up to CONTEXT_BEATS (45) beats before it and up to LOOKAHEAD_BEATS
(5) in the LOOKAHEAD_MS (5 s) after it (the shared records have no gaps, so always min(45, beats
before the window) and min(5, beats in the 5 s after it)), as R peaks in integer microseconds from the
beat that opens the first interval read (time 0 for the record's first interval). The corrected
beats whose time is in the window, with their corrected RR, go through the same coherence
(taper-weighted detrend).
"""
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

import neurokit2 as nk
import numpy as np
import scipy
from scipy.interpolate import CubicSpline
from scipy.signal import detrend, get_window, periodogram

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data" / "rr"
OUT = REPO / "pipelines" / "hrv" / "fixtures" / "reference-coherence.json"

WINDOW_MS = 64_000
STEP_MS = 5_000
FS = 4.0
N = 256  # samples per window: 64 s at 4 Hz
NFFT = 2**18  # grid step 4 / 2^18 = 1.5e-5 Hz
PEAK_LOW, PEAK_HIGH = 0.04, 0.26
HALF_WIDTH = 0.015
TOTAL_LOW, TOTAL_HIGH = 0.0033, 0.4
CONTEXT_BEATS = 45  # beats before a window that pipelines/hrv/artifacts.ts cleanRrInto reads
LOOKAHEAD_BEATS = 5  # beats after it that it reads (artifacts.ts LOOKAHEAD_BEATS) ...
LOOKAHEAD_MS = 5_000  # ... within this span after its end (artifacts.ts LOOKAHEAD_MS)

FREQS = np.fft.rfftfreq(NFFT, 1 / FS)
DF = FREQS[1]
SEARCH = (FREQS >= PEAK_LOW) & (FREQS <= PEAK_HIGH)
TOTAL = (FREQS >= TOTAL_LOW) & (FREQS <= TOTAL_HIGH)
HANN = get_window("hann", N)  # periodic, as scipy uses for spectral analysis


def tachogram(beat_ms: np.ndarray, rr_ms: np.ndarray, start_ms: float) -> np.ndarray:
    sample_ms = start_ms + np.arange(N) * (1000.0 / FS)
    if len(beat_ms) == 1:
        return np.full(N, rr_ms[0])
    spline = CubicSpline(beat_ms, rr_ms, bc_type="natural")
    return spline(np.clip(sample_ms, beat_ms[0], beat_ms[-1]))


def taper_weighted_detrend(x: np.ndarray) -> np.ndarray:
    u = np.arange(N) - N / 2
    slope, intercept = np.polyfit(u, x, 1, w=HANN)
    return x - (intercept + slope * u)


def coherence(x_detrended: np.ndarray) -> dict:
    _, psd = periodogram(x_detrended, fs=FS, window="hann", nfft=NFFT, detrend=False, scaling="density")
    search_idx = np.flatnonzero(SEARCH)
    peak_hz = float(FREQS[search_idx[np.argmax(psd[search_idx])]])
    peak = float(psd[np.abs(FREQS - peak_hz) <= HALF_WIDTH].sum() * DF)
    total = float(psd[TOTAL].sum() * DF)
    return {"cr": peak / (total - peak), "peakHz": peak_hz, "peakPower": peak, "totalPower": total}


def sig(x: float, digits: int = 7) -> float:
    return float(f"{x:.{digits}g}")


def kubios_corrected(rr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(beat times ms, RR ms) after NeuroKit2's Kubios correction of the whole record."""
    peaks_us = np.concatenate([[0], np.cumsum(np.rint(rr * 1000).astype(np.int64))])
    _, fixed = nk.signal_fixpeaks(peaks_us, sampling_rate=1_000_000, method="kubios", iterative=True, show=False)
    fixed = np.asarray(fixed, dtype=np.int64)
    return fixed[1:] / 1000.0, np.diff(fixed) / 1000.0


def kubios_causal(t: np.ndarray, rr: np.ndarray, start_ms: float) -> tuple[np.ndarray, np.ndarray]:
    """(beat times ms, RR ms) in [start, start + 64 s) after NeuroKit2's Kubios correction of the
    beats Attune's cleaning reads for that window: its own, up to CONTEXT_BEATS before it and up to
    LOOKAHEAD_BEATS in the LOOKAHEAD_MS after it."""
    frm = int(np.searchsorted(t, start_ms, side="left"))
    to = int(np.searchsorted(t, start_ms + WINDOW_MS, side="left"))
    first = max(0, frm - CONTEXT_BEATS)
    # Up to LOOKAHEAD_BEATS beats in the LOOKAHEAD_MS after the window's end (artifacts.ts).
    last = min(to + LOOKAHEAD_BEATS, int(np.searchsorted(t, start_ms + WINDOW_MS + LOOKAHEAD_MS, side="left")))
    # Integer microseconds built as kubios_corrected builds the whole record's (each interval
    # rounded, then summed), so a beat has the same peak value in both: the opening beat (time 0
    # for the record's first interval), then each interval read added on.
    opening_us = int(np.sum(np.rint(rr[:first] * 1000).astype(np.int64)))
    peaks_us = opening_us + np.concatenate([[0], np.cumsum(np.rint(rr[first:last] * 1000).astype(np.int64))])
    _, fixed = nk.signal_fixpeaks(peaks_us, sampling_rate=1_000_000, method="kubios", iterative=True, show=False)
    fixed = np.asarray(fixed, dtype=np.int64)
    tk, rrk = fixed[1:] / 1000.0, np.diff(fixed) / 1000.0
    sel = (tk >= start_ms) & (tk < start_ms + WINDOW_MS)
    return tk[sel], rrk[sel]


def main() -> int:
    if not DATA.is_dir():
        print(f"data folder not found: {DATA}", file=sys.stderr)
        return 1
    recordings = {}
    for f in sorted(DATA.glob("*.rr_ms.txt")):
        rr = np.loadtxt(f, dtype=float)
        t = np.cumsum(rr)
        tk, rrk = kubios_corrected(rr)
        windows = []
        start = 0.0
        while start + WINDOW_MS <= t[-1]:
            sel = (t >= start) & (t < start + WINDOW_MS)
            row = {"startMs": start, "beatCount": int(sel.sum())}
            if sel.sum() >= 4:
                x = tachogram(t[sel], rr[sel], start)
                weighted = coherence(taper_weighted_detrend(x))
                plain = coherence(detrend(x, type="linear"))
                row.update({k: sig(v) for k, v in weighted.items()})
                row.update({"crPlainDetrend": sig(plain["cr"]), "peakHzPlainDetrend": sig(plain["peakHz"])})
            selk = (tk >= start) & (tk < start + WINDOW_MS)
            row["beatCountKubios"] = int(selk.sum())
            if selk.sum() >= 4:
                kub = coherence(taper_weighted_detrend(tachogram(tk[selk], rrk[selk], start)))
                row.update({"crKubios": sig(kub["cr"]), "peakHzKubios": sig(kub["peakHz"])})
            tc, rrc = kubios_causal(t, rr, start)
            row["beatCountKubiosCausal"] = int(len(tc))
            if len(tc) >= 4:
                cau = coherence(taper_weighted_detrend(tachogram(tc, rrc, start)))
                row.update({"crKubiosCausal": sig(cau["cr"]), "peakHzKubiosCausal": sig(cau["peakHz"])})
            windows.append(row)
            start += STEP_MS
        recordings[f.name] = windows
        print(f"{f.name}: {len(windows)} windows", file=sys.stderr)
    doc = {
        "note": (
            "Reference coherence ratio (McCraty et al. 2009) per 64 s window every 5 s from the record start, "
            "made by scripts/reference/coherence_reference.py (see its docstring for every step) on "
            f"{datetime.now(timezone.utc).strftime('%Y-%m-%d')}. Raw RR as recorded (no artifact correction); "
            "natural cubic spline at 4 Hz held flat outside the window's beats; taper-weighted linear detrend "
            "(fields cr, peakHz, peakPower, totalPower) and plain linear detrend (crPlainDetrend, peakHzPlainDetrend); "
            "crKubios, peakHzKubios: taper-weighted, on the record after NeuroKit2 signal_fixpeaks(method='kubios', "
            "iterative=True), whole record; crKubiosCausal, peakHzKubiosCausal: the same on exactly the beats Attune's "
            "cleaning reads for the window (its beats, up to 45 before it and up to 5 in the 5 s after it), corrected per window; "
            f"periodic Hann; scipy.signal.periodogram with nfft={NFFT} (grid {DF:.3g} Hz); peak = largest value in "
            "0.04-0.26 Hz; peak band +-0.015 Hz; total 0.0033-0.4 Hz; CR = peak / (total - peak). Powers in ms^2."
        ),
        "scipyVersion": scipy.__version__,
        "neurokit2Version": nk.__version__,
        "numpyVersion": np.__version__,
        "windowMs": WINDOW_MS,
        "stepMs": STEP_MS,
        "nfft": NFFT,
        "recordings": recordings,
    }
    # One window per line: readable diffs, a third of the size of an indented dump.
    head = json.dumps({k: v for k, v in doc.items() if k != "recordings"}, indent=1)[:-2]
    records = ",\n".join(
        f"  {json.dumps(name)}: [\n" + ",\n".join("   " + json.dumps(w, separators=(",", ":")) for w in ws) + "\n  ]"
        for name, ws in recordings.items()
    )
    OUT.write_text(head + ',\n "recordings": {\n' + records + "\n }\n}\n")
    print(f"wrote {OUT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
