import { afterEach, describe, expect, it } from 'vitest';
import type { Anchor, Witness } from '../../platform/witness/port.ts';

/** What every witness adapter must do: keep what it was given, per store, readable back. */
export function witnessContract(
  name: string,
  setup: {
    /** A fresh, empty witness (the suite closes it). */
    newWitness(): Promise<Witness>;
    /** Whether it keeps every head (file, HTTP) or at least the latest per store (a compacted topic). */
    keeps: 'all' | 'latest';
  },
): void {
  describe(`witness contract: ${name}`, () => {
    const open: Witness[] = [];
    afterEach(async () => {
      while (open.length) await open.pop()!.close();
    });
    const fresh = async () => {
      const w = await setup.newWitness();
      open.push(w);
      return w;
    };
    const anchor = (store: string, position: number): Anchor => ({
      store,
      position,
      hash: position.toString(16).padStart(64, 'a'),
      at: new Date(Date.UTC(2026, 11, 6, 3, 0, position)).toISOString(),
    });

    it('reads back what was published, for the store asked about only', async () => {
      const w = await fresh();
      expect(await w.read('s1')).toEqual([]);
      await w.publish(anchor('s1', 10));
      await w.publish(anchor('s2', 99));
      await w.publish(anchor('s1', 20));
      const read = await w.read('s1');
      if (setup.keeps === 'all') expect(read).toEqual([anchor('s1', 10), anchor('s1', 20)]);
      expect(read.at(-1)).toEqual(anchor('s1', 20));
      expect(read.every((a) => a.store === 's1')).toBe(true);
      expect((await w.read('s2')).at(-1)).toEqual(anchor('s2', 99));
    });

    it('a second instance on the same place sees the first one’s heads (they outlive the process)', async () => {
      const w = await fresh();
      await w.publish(anchor('s3', 5));
      expect((await w.read('s3')).at(-1)).toEqual(anchor('s3', 5));
    });
  });
}
