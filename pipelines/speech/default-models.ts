// The recognition model a stream gets when its session's settings name none (the worker's
// defaults; ATTUNE_SPEECH_MODEL and ATTUNE_SPEECH_UPLOAD_MODEL override them in lib/config.ts).
//
// Live streams must keep up with real time on a shared core: Moonshine tiny (8 live streams per
// worker sustained, README benchmarks). An upload is a batch job: Moonshine base, about 1.6× tiny's
// compute for the whole upload path (EVALUATION.md's last round), writes more of the fillers itself and leaves the
// alignment fewer gaps to misplace; it is the model with which filler detection meets issue 7's
// Done-when (test/fixtures/fillers/EVALUATION.md).
export const DEFAULT_LIVE_MODEL = 'moonshine-tiny';
export const DEFAULT_UPLOAD_MODEL = 'moonshine-base';
