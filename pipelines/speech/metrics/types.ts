/** One transcribed word. Times come from forced alignment or are estimated; `text` may carry punctuation ("so,"). */
export interface TimedWord {
  text: string;
  startMs: number;
  endMs: number;
}

/** A stretch of speech (or, read inversely, the pauses between them), e.g. from voice activity detection. */
export interface TimeSpan {
  startMs: number;
  endMs: number;
}
