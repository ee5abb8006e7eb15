#!/usr/bin/env python3
"""Reference speaking (phonation) time and silences of the real speech clips, by Praat itself.

Dev-only: writes test/fixtures/speech/speaking-time.json (../shared/data/speech) and
test/fixtures/speech/fillers-speaking-time.json (../shared/data/fillers), the ground truth the
speech tests compare Attune's articulation rate, phonation spans and pauses against (the silent
intervals are the gaps between the sounding spans). As de Jong & Wempe's speech-rate script
(Syllable Nuclei v2, 2010 revision) does it: the intensity (minimum pitch 100 Hz), its maximum and
its 0.99 quantile ("almost maximum ... rather than maximum to avoid using irrelevant non-speech
sound-bursts"), then Praat's Intensity "To TextGrid (silences)" with the silence threshold
-25 dB below the 0.99 quantile (passed as -25 - (maximum - quantile), since Praat reads it
relative to the maximum), minimum silent interval 0.25 s, minimum sounding interval 0.05 s: the
sum of the sounding intervals is the phonation time. Each clip also records the maximum and the
quantile (dB) and the threshold used.

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
fixtures = os.environ.get("ATTUNE_FIXTURES_OUT") or os.path.join(root, "test", "fixtures", "speech")


def write(folder, out):
    clips = {}
    for path in sorted(glob.glob(os.path.join(data, folder, "*.wav"))):
        sound = parselmouth.Sound(path)
        intensity = call(sound, "To Intensity", 100, 0.0, "yes")
        max_db = call(intensity, "Get maximum", 0, 0, "Parabolic")
        q99_db = call(intensity, "Get quantile", 0, 0, 0.99)
        grid = call(intensity, "To TextGrid (silences)", -25.0 - (max_db - q99_db), 0.25, 0.05, "silent", "sounding")
        spans = []
        for i in range(1, call(grid, "Get number of intervals", 1) + 1):
            if call(grid, "Get label of interval", 1, i) == "sounding":
                spans.append([round(call(grid, "Get start time of interval", 1, i) * 1000), round(call(grid, "Get end time of interval", 1, i) * 1000)])
        clips[os.path.basename(path)] = {
            "sounding_ms": sum(b - a for a, b in spans),
            "spans_ms": spans,
            "duration_ms": round(sound.duration * 1000),
            "max_db": round(max_db, 2),
            "q99_db": round(q99_db, 2),
            "threshold_db": round(q99_db - 25.0, 2),
        }
    if not clips:
        sys.exit(f"no .wav files in {os.path.join(data, folder)}: pass the shared data folder (../shared/data), not one of its subfolders")
    result = {
        "doc": f"Phonation time of each clip in ../shared/data/{folder} by Praat's Intensity To TextGrid (silences) as de Jong & Wempe's script runs it (intensity at 100 Hz; threshold 25 dB below the intensity's 0.99 quantile; 0.25 s, 0.05 s), made by scripts/reference/praat_speaking_time.py.",
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
