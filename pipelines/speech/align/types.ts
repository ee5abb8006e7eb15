// Word timings as the aligner hands them to the speech worker.
import type { WordTimingMethod } from '../../../store/rows.js';

export type { WordTimingMethod };

/** One word with its times in milliseconds of the session, and how those times were found. */
export interface AlignedWord {
  text: string;
  startMs: number;
  endMs: number;
  method: WordTimingMethod;
}
