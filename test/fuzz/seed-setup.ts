import type { TestProject } from 'vitest/node';

/**
 * One seed for every fuzz property of a test run, printed before any test starts so a failing
 * run can be replayed with FUZZ_SEED=<seed> (fast-check also prints the seed and path of the
 * counterexample it found).
 */
export default function setup(project: TestProject): void {
  const given = process.env.FUZZ_SEED;
  const seed = given !== undefined && given !== '' ? Number(given) : (Date.now() ^ (Math.random() * 0x7fffffff)) | 0;
  if (!Number.isInteger(seed)) throw new Error(`FUZZ_SEED must be an integer, got "${given}"`);
  const scale = Number(process.env.FUZZ_RUNS ?? '1');
  if (!(scale > 0)) throw new Error(`FUZZ_RUNS must be a positive number (a multiple of the default counts), got "${process.env.FUZZ_RUNS}"`);
  project.provide('fuzzSeed', seed);
  project.provide('fuzzScale', scale);
  console.log(`fuzz: seed ${seed}${given ? ' (from FUZZ_SEED)' : ''}, ${scale}× the default input counts; replay with FUZZ_SEED=${seed}`);
}

declare module 'vitest' {
  export interface ProvidedContext {
    fuzzSeed: number;
    fuzzScale: number;
  }
}
