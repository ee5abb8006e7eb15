// coherence_threshold_reached: the session's coherence score has stayed at or above its
// threshold for a given span of event time.
//
// Each window stands for the step of event time that ends at its end (windows are 5 s
// apart), so a streak of consecutive qualifying windows with ends e1 < … < ek spans
// ek − e1 + stepMs. The event fires on the window that brings the span to ≥ holdMs, once
// per crossing: the tracker then disarms and re-arms only when a valid window scores below
// threshold − hysteresis. Invalid windows (too little clean data) and missing windows (a
// gap in the beats) break the streak but do not re-arm: no data is not evidence that the
// score dropped. State is a few numbers; time comes only from the windows.
import { AttuneError } from '../../lib/errors.js';
import { defaultStepMs } from './session-windows.js';

export const coherenceThresholdReached = 'coherence_threshold_reached';

export interface ThresholdTrackerOptions {
  sessionId: string;
  /** Coherence score (0..1) to reach. */
  threshold: number;
  /** Event time the score must stay at or above the threshold, ms. */
  holdMs: number;
  /** Distance between window ends, ms. Default 5 000. */
  stepMs?: number;
  /** Re-arm only when the score falls below threshold − hysteresis. Default 0. */
  hysteresis?: number;
}

/** What the tracker needs of a computed window. */
export interface WindowScore {
  windowEndMs: number;
  valid: boolean;
  /** Null when the window is invalid. */
  coherence: number | null;
}

export interface ThresholdReachedPayload {
  threshold: number;
  holdMs: number;
  /** Start of the streak's span: first qualifying window's end − stepMs. */
  streakStartMs: number;
  windowEndMs: number;
  /** Score of the window that completed the hold. */
  coherence: number;
  /** Qualifying windows in the streak so far. */
  windowCount: number;
}

/**
 * The stored and published payload of a coherence_threshold_reached event
 * (session_events.payload_json; its column comment names these fields, ClickHouse 0021).
 */
export function thresholdReachedPayloadJson(p: ThresholdReachedPayload): string {
  return JSON.stringify({
    threshold: p.threshold,
    hold_s: p.holdMs / 1000,
    coherence: p.coherence,
    streak_start: new Date(p.streakStartMs).toISOString(),
  });
}

export interface SessionEventDescriptor {
  /** `${sessionId}:coherence_threshold_reached:${windowEndMs}`: a replay yields the same id. */
  eventId: string;
  sessionId: string;
  type: typeof coherenceThresholdReached;
  /** Event time: the end of the window that completed the hold. */
  occurredAtMs: number;
  payload: ThresholdReachedPayload;
}

/** What a tracker needs to continue where another left off (snapshot / restore). */
export interface ThresholdSnapshot {
  armed: boolean;
  lastEndMs: number | null;
  streakFirstEndMs: number | null;
  streakWindowCount: number;
  /** The settings it judged by (absent in snapshots written before 2026-12-06: restore keeps the tracker's). */
  threshold?: number;
  holdMs?: number;
}

export class ThresholdTracker {
  readonly sessionId: string;
  /** Changed only by reconfigure(). */
  threshold: number;
  holdMs: number;
  readonly stepMs: number;
  readonly hysteresis: number;

  #armed = true;
  #lastEndMs = -Infinity;
  /** End of the streak's first window; null when there is no streak. */
  #streakFirstEndMs: number | null = null;
  #streakWindowCount = 0;

  constructor(opts: ThresholdTrackerOptions) {
    const problems: { field: string; reason: 'invalid_argument'; message: string }[] = [];
    if (!Number.isFinite(opts.threshold)) problems.push({ field: 'threshold', reason: 'invalid_argument', message: 'must be a finite number' });
    if (!(opts.holdMs > 0) || !Number.isFinite(opts.holdMs)) problems.push({ field: 'holdMs', reason: 'invalid_argument', message: 'must be > 0' });
    const stepMs = opts.stepMs ?? defaultStepMs;
    if (!Number.isInteger(stepMs) || stepMs <= 0) problems.push({ field: 'stepMs', reason: 'invalid_argument', message: 'must be a positive integer' });
    const hysteresis = opts.hysteresis ?? 0;
    if (!(hysteresis >= 0) || !Number.isFinite(hysteresis)) problems.push({ field: 'hysteresis', reason: 'invalid_argument', message: 'must be ≥ 0' });
    if (problems.length > 0) {
      throw new AttuneError('validation_error', 'invalid threshold tracker options', problems);
    }
    this.sessionId = opts.sessionId;
    this.threshold = opts.threshold;
    this.holdMs = opts.holdMs;
    this.stepMs = stepMs;
    this.hysteresis = hysteresis;
  }

  /**
   * The tracker's state after the last window fed (the coherence worker's restart checkpoint,
   * coherence/checkpoints.ts); `restore()` on a tracker with the same options continues from it
   * exactly as this one would. Infinity-free: lastEndMs is null before any window.
   */
  snapshot(): ThresholdSnapshot {
    return {
      armed: this.#armed,
      lastEndMs: this.#lastEndMs === -Infinity ? null : this.#lastEndMs,
      streakFirstEndMs: this.#streakFirstEndMs,
      streakWindowCount: this.#streakWindowCount,
      threshold: this.threshold,
      holdMs: this.holdMs,
    };
  }

  restore(s: ThresholdSnapshot): void {
    this.#armed = s.armed;
    this.#lastEndMs = s.lastEndMs ?? -Infinity;
    this.#streakFirstEndMs = s.streakFirstEndMs;
    this.#streakWindowCount = s.streakWindowCount;
    if (s.threshold !== undefined && Number.isFinite(s.threshold)) this.threshold = s.threshold;
    if (s.holdMs !== undefined && s.holdMs > 0 && Number.isFinite(s.holdMs)) this.holdMs = s.holdMs;
  }

  /**
   * New settings from the next window on (the session's threshold or hold was changed): a
   * streak begun under the old ones ends here, and a new one starts with the next qualifying
   * window; armed or not stays as it was, so a crossing already reported is not reported again
   * for the same run of high scores.
   */
  reconfigure(threshold: number, holdMs: number): void {
    if (!Number.isFinite(threshold) || !(holdMs > 0) || !Number.isFinite(holdMs)) {
      throw new AttuneError('validation_error', 'invalid threshold settings', [{ reason: 'invalid_argument', message: `threshold ${threshold}, holdMs ${holdMs}` }]);
    }
    if (threshold === this.threshold && holdMs === this.holdMs) return;
    this.threshold = threshold;
    this.holdMs = holdMs;
    this.#streakFirstEndMs = null;
    this.#streakWindowCount = 0;
  }

  /** False between an event and the drop below threshold − hysteresis that re-arms it. */
  get armed(): boolean {
    return this.#armed;
  }

  /** Event time the current streak spans, ms (0 without a streak). */
  get streakSpanMs(): number {
    return this.#streakFirstEndMs === null ? 0 : this.#lastEndMs - this.#streakFirstEndMs + this.stepMs;
  }

  /**
   * Feeds the next window of the session (in window-end order) and returns the events it
   * causes: none or one. A window whose end is not after the last one fed is ignored, so
   * feeding a replayed window twice changes nothing.
   */
  update(window: WindowScore): SessionEventDescriptor[] {
    const end = window.windowEndMs;
    if (!(end > this.#lastEndMs)) return [];
    const follows = end === this.#lastEndMs + this.stepMs;
    this.#lastEndMs = end;

    const score = window.valid && window.coherence !== null && Number.isFinite(window.coherence) ? window.coherence : null;
    if (score !== null && score < this.threshold - this.hysteresis) this.#armed = true;
    if (score === null || score < this.threshold) {
      this.#streakFirstEndMs = null;
      this.#streakWindowCount = 0;
      return [];
    }
    if (!follows || this.#streakFirstEndMs === null) {
      this.#streakFirstEndMs = end;
      this.#streakWindowCount = 0;
    }
    this.#streakWindowCount++;
    if (!this.#armed || this.streakSpanMs < this.holdMs) return [];
    this.#armed = false;
    return [
      {
        eventId: `${this.sessionId}:${coherenceThresholdReached}:${end}`,
        sessionId: this.sessionId,
        type: coherenceThresholdReached,
        occurredAtMs: end,
        payload: {
          threshold: this.threshold,
          holdMs: this.holdMs,
          streakStartMs: this.#streakFirstEndMs - this.stepMs,
          windowEndMs: end,
          coherence: score,
          windowCount: this.#streakWindowCount,
        },
      },
    ];
  }
}
