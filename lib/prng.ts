// Seeded pseudo-random numbers for simulations and tests. Everything random in a simulated
// stream comes from one of these, so that a seed reproduces a stream exactly
// (Math.random cannot be seeded).

/** A source of uniform numbers in [0, 1). */
export interface Prng {
  next(): number;
}

/**
 * mulberry32: 32 bits of state, period 2^32, passes the usual statistical batteries
 * well enough for simulation (not for cryptography).
 */
export class Mulberry32 implements Prng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
}

/** A standard normal deviate (Box–Muller; the second deviate is dropped to stay stateless). */
export function gaussian(rng: Prng): number {
  const u1 = 1 - rng.next(); // (0, 1]: log(0) would be -Infinity
  const u2 = rng.next();
  return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
}

/** An exponential deviate with the given mean. */
export function exponential(rng: Prng, mean: number): number {
  return -mean * Math.log(1 - rng.next());
}

/**
 * A seed for sub-stream `stream` of `seed` (splitmix32 finaliser), so that device 2's
 * stream does not depend on how many numbers device 1 drew.
 */
export function deriveSeed(seed: number, stream: number): number {
  let z = (Math.imul(seed >>> 0, 0x9e3779b1) + Math.imul(stream + 1, 0x85ebca6b)) >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x21f0aaad);
  z = Math.imul(z ^ (z >>> 15), 0x735a2d97);
  return (z ^ (z >>> 15)) >>> 0;
}

/** A seeded uniform [0, 1) generator as a plain function (mulberry32). */
export function createRandom(seed: number): () => number {
  const m = new Mulberry32(seed);
  return () => m.next();
}
