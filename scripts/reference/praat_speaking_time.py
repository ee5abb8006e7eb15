#!/usr/bin/env python3
"""Reference speaking (phonation) time and silences of the real speech clips, by Praat itself.

Dev-only: writes test/fixtures/speech/speaking-time.json (../shared/data/speech) and
test/fixtures/speech/fillers-speaking-time.json (../shared/data/fillers), the ground truth the
speech tests compare Attune's articulation rate, phonation spans and pauses against (the silent
intervals are the gaps between the sounding spans). Praat's "To TextGrid
(silences)" with the settings of de Jong & Wempe's speech-rate script (minimum pitch 100 Hz,
silence threshold -25 dB relative to the maximum intensity, minimum silent interval 0.25 s,
minimum sounding interval 0.05 s): the sum of the sounding intervals is the phonation time.

    pip install praat-parselmouth==0.4.7
    python3 scripts/reference/praat_speaking_time.py [../shared/data]
"""
import glob
import json
import os
import sys

import parselmouth
from parselmouth.praat import call

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.normpath(os.path.join(here, "..", ".."))
data = sys.argv[1] if len(sys.argv) > 1 else os.path.normpath(os.path.join(root, "..", "shared", "data"))
fixtures = os.path.join(root, "test", "fixtures", "speech")


def write(folder, out):
    clips = {}
    for path in sorted(glob.glob(os.path.join(data, folder, "*.wav"))):
        sound = parselmouth.Sound(path)
        grid = call(sound, "To TextGrid (silences)", 100, 0.0, -25.0, 0.25, 0.05, "silent", "sounding")
        spans = []
        for i in range(1, call(grid, "Get number of intervals", 1) + 1):
            if call(grid, "Get label of interval", 1, i) == "sounding":
                spans.append([round(call(grid, "Get start time of interval", 1, i) * 1000), round(call(grid, "Get end time of interval", 1, i) * 1000)])
        clips[os.path.basename(path)] = {"sounding_ms": sum(b - a for a, b in spans), "spans_ms": spans, "duration_ms": round(sound.duration * 1000)}
    if not clips:
        sys.exit(f"no .wav files in {os.path.join(data, folder)}: pass the shared data folder (../shared/data), not one of its subfolders")
    result = {
        "doc": f"Phonation time of each clip in ../shared/data/{folder} by Praat's To TextGrid (silences) (100 Hz, -25 dB, 0.25 s, 0.05 s), made by scripts/reference/praat_speaking_time.py.",
        "praat": parselmouth.PRAAT_VERSION,
        "parselmouth": parselmouth.__version__,
        "clips": clips,
    }
    with open(os.path.join(fixtures, out), "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    print(f"wrote {out}: {len(clips)} clips")


write("speech", "speaking-time.json")
write("fillers", "fillers-speaking-time.json")
