// Speech frame features: RMS volume and pitch (YIN candidates and a Viterbi path, pitch.ts) on
// 30 ms frames every 10 ms, and pitch statistics. Pure: typed arrays in, numbers out; plans and
// buffers belong to the caller.
import { DEFAULT_HOP, DEFAULT_PITCH_FRAME_SIZE, SPEECH_SAMPLE_RATE, frameCount } from './frames.js';
import { type PitchPlan, type PitchPlanOptions, type PitchTrack, createPitchPlan, createPitchTrack, trackPitch } from './pitch.js';

export * from './frames.js';
export * from './volume.js';
export * from './pitch.js';
export * from './pitch-stats.js';

export interface SpeechFeaturePlan {
  readonly hop: number;
  readonly pitch: PitchPlan;
}

/**
 * One plan for 16 kHz speech: 480-sample (30 ms) frames every 160 samples (10 ms), pitch
 * 60–500 Hz. Volume and pitch use the same frame, so frame i of both is centred on
 * (i · 160 + 240) / 16000 s. The pitch options (pitch.ts) default to the values chosen there.
 */
export function createSpeechFeaturePlan(
  opts: { frameSize?: number; hop?: number } & Omit<PitchPlanOptions, 'sampleRate' | 'frameSize'> = {},
): SpeechFeaturePlan {
  const { frameSize, hop, ...pitch } = opts;
  return {
    hop: hop ?? DEFAULT_HOP,
    pitch: createPitchPlan({ ...pitch, sampleRate: SPEECH_SAMPLE_RATE, frameSize: frameSize ?? DEFAULT_PITCH_FRAME_SIZE }),
  };
}

export interface SpeechFeatures extends PitchTrack {
  frames: number;
}

/**
 * Volume (dbfs), f0, aperiodicity and voicing of every whole frame of 16 kHz samples, the
 * samples taken as one whole recording (the path of the last frames is decided at its end).
 * `out`, when given, must have room for every frame and is reused.
 */
export function computeSpeechFeatures(samples: Float32Array, plan: SpeechFeaturePlan, out?: PitchTrack): SpeechFeatures {
  const frames = frameCount(samples.length, { frameSize: plan.pitch.frameSize, hop: plan.hop });
  const track = trackPitch(samples, plan.hop, plan.pitch, out ?? createPitchTrack(frames));
  return { ...track, frames };
}
