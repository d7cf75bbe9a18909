import { z } from 'zod';
import { recordDetectionsIn } from '../../../platform/metrics.ts';
import type { IngestGateway } from '../../../schemas/gateways.ts';
import { type ApiRoutes, COMMON_ERRORS } from '../context.ts';
import { addRoute, ErrorBody } from '../http.ts';
import { rolesFor } from '../roles.ts';
import { DetectionsBody, parseDetections } from '../schemas.ts';

/** Detections in: POST /v1/detections. */
export const ingestRoutes: ApiRoutes = async (app, { ctx }) => {
  addRoute(app, ctx.auth, {
    method: 'POST',
    url: '/v1/detections',
    roles: rolesFor('POST /v1/detections'),
    summary: 'Submit normalized detections',
    description:
      'One normalized detection or a non-empty array. All or nothing: one invalid item rejects the whole request (400 naming `<index>.<field>`; 413 when `raw` or `evidence` is over its size limit), and the request is appended in one transaction. Answers 202 once every detection is durably recorded in the event store (the views catch up within moments; `?wait=views` answers only once they include the detections); the same detection (source + id, same content) again is counted as a duplicate. The same source + id with another identity or other content is refused (409 `DUPLICATE_CONFLICT`, naming both identities) and recorded as a DetectionConflicted event.',
    tags: ['ingest'],
    body: DetectionsBody,
    query: z.strictObject({
      wait: z
        .enum(['durable', 'views'])
        .default('durable')
        .describe(
          '`durable` (default): answer once the detections are in the event store. `views`: also wait until the read views include them (read-your-writes for scripts; slower).',
        ),
    }),
    parseBody: parseDetections,
    response: {
      202: z.object({
        accepted: z.number().int(),
        duplicates: z.number().int(),
        receipts: z.array(
          z.object({
            id: z.string(),
            source: z.string(),
            status: z.enum(['accepted', 'duplicate', 'queued']),
            eventId: z.string().optional(),
          }),
        ),
      }),
      ...COMMON_ERRORS,
      409: ErrorBody,
      413: ErrorBody,
      415: ErrorBody,
    },
    handler: async ({ body, query, reply }) => {
      const detections = body as unknown as Parameters<IngestGateway['accept']>[0];
      const receipts = await ctx.ingest.accept(detections);
      const duplicates = receipts.filter((r) => r.status === 'duplicate').length;
      const accepted = receipts.length - duplicates;
      recordDetectionsIn(accepted, 'accepted');
      recordDetectionsIn(duplicates, 'duplicate');
      // 202 promises durability, nothing more: the views catch up on their own (a GET may lag briefly)
      // unless the client asked to wait for them.
      if (query.wait === 'views') await ctx.settle();
      reply.status(202);
      return { accepted, duplicates, receipts };
    },
  });
};
