import { digestOf } from '../../platform/digest.ts';
import type { EventStore } from '../../platform/eventstore/port.ts';
import type { CatalogueEntry } from '../../schemas/catalogue.ts';
import { identityKey } from '../../schemas/detection.ts';
import { CATALOGUE_STREAM, type NewEvent, POLICY_STREAM, SCHEMA_VERSION } from '../../schemas/events.ts';
import type { LoadedPolicy } from './policy/load.ts';

/**
 * Records a policy as active (PolicyActivated with its digest and author) unless it already is.
 * Every decision names its policy version, and this event says who put that version in force.
 */
export async function activatePolicy(
  store: EventStore,
  loaded: LoadedPolicy,
  author: string,
  now: Date,
): Promise<NewEvent | null> {
  const history = await store.readStream(POLICY_STREAM);
  const last = history[history.length - 1];
  if (last?.type === 'PolicyActivated' && last.data.digest === loaded.digest) return null;
  const event: NewEvent = {
    id: `policy-${loaded.policy.id}-${loaded.policy.version}-${loaded.digest.slice(7, 19)}-${history.length + 1}`,
    type: 'PolicyActivated',
    stream: POLICY_STREAM,
    occurredAt: now.toISOString(),
    causationId: null,
    correlationId: null,
    schemaVersion: SCHEMA_VERSION,
    data: {
      policyId: loaded.policy.id,
      version: loaded.policy.version,
      digest: loaded.digest,
      author,
      policy: loaded.policy,
    },
  };
  await store.append(POLICY_STREAM, [event], last ? last.revision : 'no_stream');
  return event;
}

/** Records catalogue entries that are new or changed as IdentityCatalogued events (the audit trail of context). */
export async function recordCatalogue(
  store: EventStore,
  entries: readonly CatalogueEntry[],
  by: string,
  now: Date,
): Promise<number> {
  const history = await store.readStream(CATALOGUE_STREAM);
  const latest = new Map<string, string>();
  for (const e of history)
    if (e.type === 'IdentityCatalogued') latest.set(identityKey(e.data.entry), digestOf(e.data.entry));
  const events: NewEvent[] = [];
  for (const entry of entries) {
    const digest = digestOf(entry);
    if (latest.get(identityKey(entry)) === digest) continue;
    latest.set(identityKey(entry), digest);
    events.push({
      id: `catalogue-${history.length + events.length + 1}-${digest.slice(7, 19)}`,
      type: 'IdentityCatalogued',
      stream: CATALOGUE_STREAM,
      occurredAt: now.toISOString(),
      causationId: null,
      correlationId: null,
      schemaVersion: SCHEMA_VERSION,
      data: { entry, by: { kind: 'system', id: by } },
    });
  }
  if (events.length > 0) {
    const last = history[history.length - 1];
    await store.append(CATALOGUE_STREAM, events, last ? last.revision : 'no_stream');
  }
  return events.length;
}
