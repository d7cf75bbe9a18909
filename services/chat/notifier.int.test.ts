import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { TourniquetError } from '../../platform/errors.ts';
import { SqliteEventStore } from '../../platform/eventstore/sqlite.ts';
import type { SlackApi } from '../../platform/slack.ts';
import { identityStream, type NewEvent } from '../../schemas/events.ts';
import { ChatNotifier } from './notifier.ts';

/** The notifier's queue: retries what a retry can fix, in order, once per action, and stops at once. */

const identity = { provider: 'okta', id: 'gina@acme.example', type: 'human' as const };
const stream = identityStream(identity);

function proposal(n: number): NewEvent {
  return {
    id: `ev-${n}`,
    type: 'ActionProposed',
    stream,
    occurredAt: '2026-12-06T03:00:00.000Z',
    causationId: null,
    correlationId: null,
    schemaVersion: 1,
    data: {
      actionId: `act-${n}`,
      caseId: 'case-1',
      identity,
      action: 'revoke_sessions',
      stage: 1,
      ruleId: 'analyst-review',
      policyId: 'default',
      policyVersion: '1',
      detectionIds: [],
      args: {},
      argsDigest: `sha256:${n}`,
      blastRadius: {
        consumers: 1,
        tier: 'production',
        shared: false,
        thirdParty: false,
        reversible: true,
        budgetUsed: 0,
        budgetLimit: -1,
        budgetKeys: [],
      },
      approval: {
        mode: 'analyst',
        ttlSeconds: 3600,
        expiresAt: '2026-12-06T04:00:00.000Z',
        reason: 'analyst review',
      },
      guards: [],
      rollback: { complete: true, notes: [] },
    },
  } as NewEvent;
}

const until = async (probe: () => boolean, ms = 5000) => {
  const t = Date.now();
  while (!probe()) {
    if (Date.now() - t > ms) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe('ChatNotifier', () => {
  it('retries a retriable failure in order, posts each approval once, and survives a restart without reposting', async () => {
    const store = new SqliteEventStore({ path: ':memory:' });
    const dataDir = mkdtempSync(join(tmpdir(), 'tq-notifier-'));
    const posted: string[] = [];
    let failures = 2;
    const slack: SlackApi = {
      postMessage: async (args) => {
        if (failures-- > 0)
          throw new TourniquetError('PROVIDER_RETRIABLE', 'Slack busy', { retriable: true });
        posted.push(String(args.text));
        return { channel: 'C1', ts: `${posted.length}.0` };
      },
      update: async () => undefined,
      postEphemeral: async () => undefined,
    };
    const config = { modes: ['analyst'], slack: { channel: 'C1' } };
    const opts = { store, config, slack, dataDir, retry: { initialDelayMs: 5, maxDelayMs: 10 } };
    await store.append(stream, [proposal(1), proposal(2)], 'any');
    const n = new ChatNotifier(opts);
    await n.start();
    await until(() => posted.length === 2);
    expect(posted[0]).toContain('revoke_sessions');
    expect(n.messageOf('act-1')).toEqual({ channel: 'C1', ts: '1.0' });
    await n.stop();

    // a new notifier over the same data dir and store: nothing is announced twice
    const again = new ChatNotifier(opts);
    await again.start();
    await store.append(stream, [proposal(3)], 'any');
    await until(() => posted.length === 3);
    await new Promise((r) => setTimeout(r, 100));
    expect(posted).toHaveLength(3);
    await again.stop();
    await store.close();
  });

  it('stops at once while waiting to retry', async () => {
    const store = new SqliteEventStore({ path: ':memory:' });
    let attempts = 0;
    const slack: SlackApi = {
      postMessage: async () => {
        attempts += 1;
        throw new TourniquetError('PROVIDER_RETRIABLE', 'Slack down', { retriable: true });
      },
      update: async () => undefined,
      postEphemeral: async () => undefined,
    };
    await store.append(stream, [proposal(1)], 'any');
    const n = new ChatNotifier({
      store,
      config: { modes: ['analyst'], slack: { channel: 'C1' } },
      slack,
      dataDir: mkdtempSync(join(tmpdir(), 'tq-notifier-')),
      // an hour: a wait that a stop did not end would outlast the test's timeout
      retry: { initialDelayMs: 3_600_000, maxDelayMs: 3_600_000 },
    });
    await n.start();
    await until(() => attempts === 1);
    await n.stop();
    expect(attempts).toBe(1);
    await store.close();
  });
});
