#!/usr/bin/env python3
"""Reference pitch tracks by Praat's autocorrelation method, for the pitch tests.

Dev-only (the product never runs Python; CI reads the committed fixture). Writes
pipelines/speech/fixtures/praat-pitch.json: for every 16 kHz WAV in ../shared/data/speech, the
PTDB-TUG clip ../shared/data/pitch/mic_F01_sa1_16k.wav and, as development data kept apart from
the clips the pass marks are judged on, ../shared/data/fillers/*.wav (real, one male speaker) and
the espeak-ng clips test/fixtures/fillers/*.wav (synthetic, male and female voices), Praat's "To Pitch (ac)"
with time step 0.01 s, pitch floor 60 Hz, pitch ceiling 500 Hz and every other setting at
Praat's default (15 candidates, not "very accurate", silence threshold 0.03, voicing threshold
0.45, octave cost 0.01, octave-jump cost 0.35, voiced/unvoiced cost 0.14).

Frame-time convention: each frame is stored with Praat's own time (Pitch.xs(), seconds from the
first sample), which is the centre of its analysis window. Praat centres the frame grid in the
sound: with a 50 ms window (3 periods of the 60 Hz floor) frame k lies at t1 + k * 0.01 s with
t1 = (duration - (n - 1) * 0.01) / 2, n = floor((duration - 0.05) / 0.01) + 1, so the grid is
not Attune's (frame i centred at i * 0.01 + 0.015 s): the tests pair every Praat frame with the
Attune frame whose centre is nearest (at most 5 ms away). f0 is 0 in unvoiced frames.

    python3 -m venv /opt/attune-ref && /opt/attune-ref/bin/pip install praat-parselmouth==0.4.7 numpy
    /opt/attune-ref/bin/python scripts/reference/praat_pitch.py
"""
import datetime
import glob
import json
import os

import parselmouth

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.normpath(os.path.join(here, "..", ".."))
data = os.path.normpath(os.path.join(root, "..", "shared", "data"))
out = os.path.join(root, "pipelines", "speech", "fixtures", "praat-pitch.json")

TIME_STEP = 0.01
FLOOR = 60.0
CEILING = 500.0

sets = {
    "speech": sorted(glob.glob(os.path.join(data, "speech", "*.wav"))),
    "pitch": [os.path.join(data, "pitch", "mic_F01_sa1_16k.wav")],
    "fillers": sorted(glob.glob(os.path.join(data, "fillers", "*.wav"))),
    # Synthetic espeak-ng clips committed in the repository (test/fixtures/fillers, top level only:
    # heldout/ and spliced/ belong to the filler detector's evaluation and hold the speech clips).
    "espeak": sorted(glob.glob(os.path.join(root, "test", "fixtures", "fillers", "*.wav"))),
}

clips = {}
for group, paths in sets.items():
    for path in paths:
        sound = parselmouth.Sound(path)
        assert sound.sampling_frequency == 16000, path
        pitch = sound.to_pitch_ac(time_step=TIME_STEP, pitch_floor=FLOOR, pitch_ceiling=CEILING)
        f0 = pitch.selected_array["frequency"]
        times = pitch.xs()
        clips[f"{group}/{os.path.basename(path)}"] = {
            "role": "development" if group in ("fillers", "espeak") else "evaluation",
            "duration_s": round(sound.duration, 6),
            "first_frame_s": round(float(times[0]), 6),
            "f0_hz": [round(float(v), 2) for v in f0],
        }

result = {
    "doc": (
        "Praat To Pitch (ac), time step 0.01 s, floor 60 Hz, ceiling 500 Hz, other settings default; "
        "frame k at first_frame_s + k * 0.01 s (window centre, seconds from the first sample); f0_hz 0 = unvoiced. "
        "Made by scripts/reference/praat_pitch.py. role: 'development' clips may be used to tune the tracker, "
        "'evaluation' clips only to score it."
    ),
    "praat": parselmouth.PRAAT_VERSION,
    "parselmouth": parselmouth.__version__,
    "made": datetime.date.today().isoformat(),
    "time_step_s": TIME_STEP,
    "pitch_floor_hz": FLOOR,
    "pitch_ceiling_hz": CEILING,
    "clips": clips,
}
with open(out, "w") as f:
    json.dump(result, f, separators=(",", ":"))
    f.write("\n")
print(f"wrote {out}: {len(clips)} clips")
for name, c in clips.items():
    v = [x for x in c["f0_hz"] if x > 0]
    print(f"  {name}: {len(c['f0_hz'])} frames, {len(v)} voiced, first {c['first_frame_s']} s")
