import { describe, expect, it } from 'vitest';
import { loadDefaultPolicy } from '../services/decider/policy/load.ts';
import { expandGrid, parseSweep, setPath } from './sweep.ts';
import { parseObjective } from './tune.ts';

const base = loadDefaultPolicy().policy;

describe('sweeps', () => {
  it('parses ranges without floating-point drift', () => {
    const s = parseSweep('rules.0.when.minConfidence=0.5..0.95:0.05');
    expect(s.path).toEqual(['rules', '0', 'when', 'minConfidence']);
    expect(s.values).toEqual([0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95]);
    expect(parseSweep('rules.1.when.count=1..3').values).toEqual([1, 2, 3]);
    expect(parseSweep('rules.1.ladder.0.approval=auto,analyst').values).toEqual(['auto', 'analyst']);
  });

  it('rejects malformed sweeps', () => {
    expect(() => parseSweep('minConfidence')).toThrow(/expected PATH=FROM\.\.TO:STEP/);
    expect(() => parseSweep('a=0.9..0.1:0.1')).toThrow(/TO must not be below FROM/);
    expect(() => parseSweep('a=0..1:0')).toThrow(/STEP > 0/);
  });

  it('sets paths by index or by id, without touching the base', () => {
    const p = setPath(base, ['rules', 'stolen-token', 'when', 'count'], 3);
    expect(p.rules.find((r) => r.id === 'stolen-token')!.when.count).toBe(3);
    expect(base.rules.find((r) => r.id === 'stolen-token')!.when.count).toBe(2);
    expect(() => setPath(base, ['rules', '99', 'when'], 1)).toThrow(/index 99 is out of range/);
    expect(() => setPath(base, ['nope', 'x'], 1)).toThrow(/"nope" does not exist/);
  });

  it('expands the grid (last sweep fastest) into validated policies', () => {
    const grid = expandGrid(base, [
      parseSweep('rules.0.when.minConfidence=0.8..0.9:0.1'),
      parseSweep('guards.shared.minConsumers=2,3,4'),
    ]);
    expect(grid).toHaveLength(6);
    expect(grid.map((v) => v.assignments.map((a) => a.value))).toEqual([
      [0.8, 2],
      [0.8, 3],
      [0.8, 4],
      [0.9, 2],
      [0.9, 3],
      [0.9, 4],
    ]);
    expect(new Set(grid.map((v) => v.digest)).size).toBe(6);
    expect(() => expandGrid(base, [parseSweep('guards.shared.minConsumers=1')])).toThrow(
      /is not a valid policy: guards\.shared\.minConsumers/,
    );
  });

  it('parses objectives', () => {
    expect(parseObjective('f1')).toEqual({ kind: 'f1' });
    expect(parseObjective('recall-at-precision:0.99')).toEqual({
      kind: 'recall-at-precision',
      minPrecision: 0.99,
    });
    expect(parseObjective('cost')).toEqual({ kind: 'cost', miss: 100, disruption: 10, approval: 1 });
    expect(parseObjective('cost:50,5,0.5')).toEqual({ kind: 'cost', miss: 50, disruption: 5, approval: 0.5 });
    expect(() => parseObjective('accuracy')).toThrow(/unknown objective/);
  });
});
