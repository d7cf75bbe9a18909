import { z } from 'zod';

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

/** Parses "90s", "15m", "4h", "7d", "2w" or a bare number of seconds into seconds. */
export function parseDuration(text: string | number): number {
  if (typeof text === 'number') return text;
  const m = /^(\d+(?:\.\d+)?)\s*([smhdw])$/.exec(text.trim());
  if (!m) throw new Error(`invalid duration "${text}": use a number with s, m, h, d or w (e.g. 15m, 4h)`);
  return Math.round(Number(m[1]) * UNIT_SECONDS[m[2]!]!);
}

/** A zod schema accepting "15m"-style durations or seconds, yielding seconds. */
export const Duration = z.union([z.number().int().positive(), z.string()]).transform((v, ctx) => {
  try {
    const seconds = parseDuration(v);
    if (seconds <= 0) throw new Error(`duration must be positive, got "${v}"`);
    return seconds;
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
    return z.NEVER;
  }
});

export function formatDuration(seconds: number): string {
  for (const [unit, size] of [
    ['w', 604800],
    ['d', 86400],
    ['h', 3600],
    ['m', 60],
  ] as const) {
    if (seconds >= size && seconds % size === 0) return `${seconds / size}${unit}`;
  }
  return `${seconds}s`;
}
