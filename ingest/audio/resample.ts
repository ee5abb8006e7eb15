// Streaming sample-rate conversion (pure, no I/O), used to bring uploads and live audio to
// the 16 kHz the speech models expect.
//
// Method: band-limited interpolation with a Kaiser-windowed sinc. Output sample n sits at
// input time t = n·from/to; it is Σ x[k]·h(t − k) over the input samples within the kernel's
// half-width. The kernel is centred on t, so the output has no delay: output n lines up with
// input time n/to seconds. For a rational ratio to/from = L/M (reduced) there are only L
// distinct fractional positions, so the taps are tabulated per phase (a polyphase filter);
// ratios with more than MAX_PHASES phases round the position to the nearest of MAX_PHASES
// (at most 1/2048 of an input sample off).
//
// Filter design: cutoff between a passband edge of 0.45·min(from, to) and a stopband edge
// of 0.5·min(from, to) (the lower Nyquist frequency), Kaiser β and length from Kaiser's
// formulas for STOPBAND_DB = 80 dB attenuation beyond the stopband edge. So 48 kHz → 16 kHz
// keeps 0–7.2 kHz (speech needs < 7 kHz) and suppresses everything above 8 kHz, which would
// otherwise fold back into the band. Each phase's taps are normalised to sum to 1 (exact
// unity gain at DC). Streaming output equals one-shot output bit for bit: the same taps
// meet the same samples whatever the chunking.

export const STOPBAND_DB = 80;
const PASSBAND_FRACTION = 0.45;
const MAX_PHASES = 1024;

export interface Resampler {
  readonly fromHz: number;
  readonly toHz: number;
  /** Feeds input samples; returns the output samples they made computable. */
  push(samples: Float32Array): Float32Array;
  /** Ends the input (zero-padded) and returns the remaining output samples. */
  flush(): Float32Array;
}

export function createResampler(fromHz: number, toHz = 16000): Resampler {
  if (!Number.isInteger(fromHz) || !Number.isInteger(toHz) || fromHz <= 0 || toHz <= 0) {
    throw new RangeError(`sample rates must be positive integers (got ${fromHz} → ${toHz})`);
  }
  if (fromHz === toHz) {
    return { fromHz, toHz, push: (s) => Float32Array.from(s), flush: () => new Float32Array(0) };
  }
  return new SincResampler(fromHz, toHz);
}

/** Resamples a whole signal at once (the same arithmetic as streaming). */
export function resample(samples: Float32Array, fromHz: number, toHz = 16000): Float32Array {
  const r = createResampler(fromHz, toHz);
  const a = r.push(samples);
  const b = r.flush();
  const out = new Float32Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

class SincResampler implements Resampler {
  readonly fromHz: number;
  readonly toHz: number;
  /** Reduced ratio: output n is at input position n·step/up. */
  private readonly up: number;
  private readonly step: number;
  private readonly phases: number;
  /** Taps per phase; phase q covers offsets −(half−1)…half around floor(t). */
  private readonly taps: number;
  private readonly half: number;
  private readonly table: Float64Array;
  /** Input history: buffer[0] is absolute input index `bufStart`. */
  private buffer = new Float32Array(0);
  private bufLen = 0;
  private bufStart = 0;
  private inputCount = 0;
  private nextOut = 0;
  private flushed = false;

  constructor(fromHz: number, toHz: number) {
    this.fromHz = fromHz;
    this.toHz = toHz;
    const g = gcd(fromHz, toHz);
    this.up = toHz / g;
    this.step = fromHz / g;
    this.phases = Math.min(this.up, MAX_PHASES);

    const nyquist = Math.min(fromHz, toHz) / 2;
    const passEdge = PASSBAND_FRACTION * Math.min(fromHz, toHz);
    const cutoff = (passEdge + nyquist) / 2 / fromHz; // cycles per input sample
    const transition = (2 * Math.PI * (nyquist - passEdge)) / fromHz; // rad per input sample
    const beta = 0.1102 * (STOPBAND_DB - 8.7);
    const length = Math.ceil((STOPBAND_DB - 7.95) / (2.285 * transition)) + 1;
    const halfWidth = length / 2; // kernel support in input samples, each side
    this.half = Math.ceil(halfWidth);
    this.taps = 2 * this.half;
    this.table = new Float64Array(this.phases * this.taps);
    const i0beta = besselI0(beta);
    for (let q = 0; q < this.phases; q++) {
      const frac = q / this.phases;
      let sum = 0;
      for (let j = 0; j < this.taps; j++) {
        const tau = frac - (j - (this.half - 1)); // t − k
        const r = tau / halfWidth;
        const w = Math.abs(r) >= 1 ? 0 : besselI0(beta * Math.sqrt(1 - r * r)) / i0beta;
        const v = 2 * cutoff * sinc(2 * cutoff * tau) * w;
        this.table[q * this.taps + j] = v;
        sum += v;
      }
      for (let j = 0; j < this.taps; j++) this.table[q * this.taps + j] /= sum;
    }
  }

  push(samples: Float32Array): Float32Array {
    if (this.flushed) throw new Error('Resampler.push after flush()');
    this.append(samples);
    return this.produce();
  }

  flush(): Float32Array {
    if (this.flushed) return new Float32Array(0);
    this.flushed = true;
    // Samples past the end are zeros; emit every output whose time is inside the input.
    const total = Math.ceil((this.inputCount * this.up) / this.step);
    this.append(new Float32Array(this.half + 1));
    return this.produce(total);
  }

  private append(samples: Float32Array): void {
    if (this.bufLen + samples.length > this.buffer.length) {
      const grown = new Float32Array(Math.max(2 * this.buffer.length, this.bufLen + samples.length, 4096));
      grown.set(this.buffer.subarray(0, this.bufLen));
      this.buffer = grown;
    }
    this.buffer.set(samples, this.bufLen);
    this.bufLen += samples.length;
    if (!this.flushed) this.inputCount += samples.length;
  }

  /** Computes outputs whose kernel lies within the available input (and below `limit`). */
  private produce(limit = Number.POSITIVE_INFINITY): Float32Array {
    const { up, step, phases, taps, half, table } = this;
    const available = this.bufStart + this.bufLen; // absolute index one past the last sample
    // Output n needs input up to floor(n·step/up) + half.
    const lastByInput = Math.floor(((available - 1 - half) * up) / step);
    let end = Math.min(lastByInput + 1, limit);
    // floor() above can overshoot by rounding for huge indices; verify the boundary exactly.
    while (end > this.nextOut && Math.floor(((end - 1) * step) / up) + half >= available) end--;
    const count = Math.max(0, end - this.nextOut);
    const out = new Float32Array(count);
    const buf = this.buffer;
    for (let o = 0; o < count; o++) {
      const n = this.nextOut + o;
      const num = n * step;
      let i = Math.floor(num / up);
      let q = num - i * up; // exact integer remainder
      if (phases !== up) {
        q = Math.round((q * phases) / up);
        if (q === phases) {
          q = 0;
          i += 1;
        }
      }
      const first = i - (half - 1); // absolute index of tap 0
      const base = q * taps;
      let acc = 0;
      let j = 0;
      // Samples before the start of the signal are zeros.
      if (first < 0) j = -first;
      let idx = first + j - this.bufStart;
      for (; j < taps; j++, idx++) acc += buf[idx] * table[base + j];
      out[o] = acc;
    }
    this.nextOut += count;
    this.discardBefore(Math.floor((this.nextOut * step) / up) - half);
    return out;
  }

  /** Drops history no future output can reach. */
  private discardBefore(absIndex: number): void {
    const drop = Math.min(Math.max(0, absIndex - this.bufStart), this.bufLen);
    if (drop < 8192 && drop < this.bufLen) return; // move memory only in large steps
    this.buffer.copyWithin(0, drop, this.bufLen);
    this.bufLen -= drop;
    this.bufStart += drop;
  }
}

function sinc(x: number): number {
  if (x === 0) return 1;
  const px = Math.PI * x;
  return Math.sin(px) / px;
}

/** Modified Bessel function of the first kind, order 0 (power series; converges fast for β ≤ 20). */
function besselI0(x: number): number {
  let sum = 1;
  let term = 1;
  const q = (x * x) / 4;
  for (let k = 1; k < 64; k++) {
    term *= q / (k * k);
    sum += term;
    if (term < sum * 1e-17) break;
  }
  return sum;
}

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}
