import { describe, expect, it } from 'vitest';
import { progressLine } from './progress.ts';

const sink = (isTTY: boolean) => {
  const chunks: string[] = [];
  return { chunks, out: { isTTY, write: (c: string) => chunks.push(c) } };
};

describe('progress line', () => {
  it('draws on a terminal once the run is long enough, and clears itself', () => {
    const { chunks, out } = sink(true);
    const p = progressLine(out, 'replay', 'inputs', 0);
    p.update(500, 1000);
    p.update(1000, 1000);
    p.done();
    expect(chunks[0]!.startsWith('\r\x1b[2Kreplay ')).toBe(true);
    expect(chunks[0]).toMatch(/replay █+░+ +50% {2}500\/1,000 inputs/);
    expect(chunks.at(-2)).toMatch(/100% {2}1,000\/1,000 inputs/);
    expect(chunks.at(-1)).toBe('\r\x1b[2K');
  });

  it('stays silent on pipes and for short runs', () => {
    const pipe = sink(false);
    const p = progressLine(pipe.out, 'replay', 'inputs', 0);
    p.update(1, 2);
    p.done();
    expect(pipe.chunks).toEqual([]);
    const tty = sink(true);
    const q = progressLine(tty.out, 'replay', 'inputs', 60_000);
    q.update(1, 2);
    q.done();
    expect(tty.chunks).toEqual([]);
  });
});
