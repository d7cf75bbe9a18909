/** Tiny helpers for benchmarks: weighted draws, timing and printing (the seeded PRNG is simulations/prng.ts). */
import { availableParallelism, loadavg } from 'node:os';

/** Picks from weighted choices with a uniform draw in [0, 1). */
export function weighted<T>(choices: ReadonlyArray<readonly [T, number]>): (u: number) => T {
  const total = choices.reduce((s, [, w]) => s + w, 0);
  const cumulative: number[] = [];
  let acc = 0;
  for (const [, w] of choices) {
    acc += w / total;
    cumulative.push(acc);
  }
  return (u) => {
    for (let i = 0; i < cumulative.length; i++) if (u < cumulative[i]!) return choices[i]![0];
    return choices[choices.length - 1]![0];
  };
}

export interface Timed<T> {
  result: T;
  /** Wall-clock milliseconds. */
  ms: number;
  /** CPU milliseconds of this process (user + system, all threads: includes GC helper threads). */
  cpuMs: number;
}

const cpuMsSince = (start: NodeJS.CpuUsage) => {
  const u = process.cpuUsage(start);
  return (u.user + u.system) / 1000;
};

export function timeSync<T>(fn: () => T): Timed<T> {
  const cpu = process.cpuUsage();
  const start = process.hrtime.bigint();
  const result = fn();
  return { result, ms: Number(process.hrtime.bigint() - start) / 1e6, cpuMs: cpuMsSince(cpu) };
}

export async function timeAsync<T>(fn: () => Promise<T>): Promise<Timed<T>> {
  const cpu = process.cpuUsage();
  const start = process.hrtime.bigint();
  const result = await fn();
  return { result, ms: Number(process.hrtime.bigint() - start) / 1e6, cpuMs: cpuMsSince(cpu) };
}

/** Runs fn `times` times and keeps the fastest (wall clock): the least disturbed by other load. */
export function bestOf<T>(times: number, fn: () => Timed<T>): Timed<T> {
  let best = fn();
  for (let i = 1; i < times; i++) {
    const t = fn();
    if (t.ms < best.ms) best = t;
  }
  return best;
}

/** The machine's load average over the last minute and its CPU count, to read the numbers against. */
export function machineLoad(): { load1: number; cpus: number } {
  return { load1: Math.round(loadavg()[0]! * 100) / 100, cpus: availableParallelism() };
}

export const perSecond = (count: number, ms: number): number => Math.round((count / ms) * 1000);

export function formatRate(n: number): string {
  return `${n.toLocaleString('en-US')}/s`;
}

/** Prints a two-column table of name → value. */
export function printTable(title: string, rows: ReadonlyArray<readonly [string, string | number]>): void {
  const width = Math.max(...rows.map(([k]) => k.length));
  console.log(`\n${title}`);
  for (const [k, v] of rows)
    console.log(`  ${k.padEnd(width)}  ${typeof v === 'number' ? v.toLocaleString('en-US') : v}`);
}
