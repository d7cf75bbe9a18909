import { z } from 'zod';
import { TourniquetError } from '../../../platform/errors.ts';
import type { ApiRoutes } from '../context.ts';
import { addRoute, ErrorBody } from '../http.ts';
import { rolesFor } from '../roles.ts';

/**
 * Chat approvals in: Slack's interaction endpoint (authenticated by Slack's request signature, not
 * by a Tourniquet credential) and the refusal record for auditors.
 */

const notConfigured = () =>
  new TourniquetError('NOT_FOUND', 'Slack approvals are not configured here (providers file: chat.slack)', {
    status: 404,
  });

export const chatRoutes: ApiRoutes = async (app, { ctx }) => {
  const deps = { auth: ctx.auth, slack: ctx.chat.slack, refusals: ctx.chat.refusals };
  // Slack signs the raw form body: this route reads it as text, in its own context, whatever
  // parsers the rest of the server has for forms.
  await app.register(async (child) => {
    child.removeAllContentTypeParsers();
    child.addContentTypeParser(
      'application/x-www-form-urlencoded',
      { parseAs: 'string', bodyLimit: 256 * 1024 },
      (_req, body, done) => done(null, body),
    );
    child.route({
      method: 'POST',
      url: '/v1/chat/slack/interactions',
      schema: {
        summary: 'Slack interactions: Approve / Reject pressed on an approval message',
        description:
          "Form-encoded `payload` (Slack block_actions). Authenticated by `X-Slack-Signature` (v0 HMAC-SHA256 of `v0:{X-Slack-Request-Timestamp}:{raw body}` with the signing secret; the timestamp within 5 minutes), not by a Tourniquet credential. The Slack user acts as the principal the configured table names; the API's approval rules apply. Refusals are recorded (GET /v1/chat/refusals).\n\nRoles: public (Slack signature).",
        tags: ['chat'],
        security: [],
        consumes: ['application/x-www-form-urlencoded'],
        body: {
          type: 'object',
          properties: {
            payload: { type: 'string', description: 'The interaction as JSON (Slack block_actions)' },
          },
          required: ['payload'],
        },
        response: {
          200: { description: 'Decision recorded', type: 'object', additionalProperties: true },
          400: { description: 'Not an approval interaction', type: 'object', additionalProperties: true },
          401: {
            description: 'Missing, wrong or stale Slack signature',
            type: 'object',
            additionalProperties: true,
          },
          403: {
            description: 'Unmapped Slack user, or no deciding role',
            type: 'object',
            additionalProperties: true,
          },
          404: {
            description: 'Slack approvals not configured, or no such action',
            type: 'object',
            additionalProperties: true,
          },
          409: {
            description: 'Refused by the approval rules (not pending, same approver twice, proposer)',
            type: 'object',
            additionalProperties: true,
          },
        },
      },
      // the body schema documents the form; the signed raw text is what the handler reads
      validatorCompiler: () => (data) => ({ value: data }),
      handler: async (request, reply) => {
        if (!deps.slack) throw notConfigured();
        const answer = await deps.slack.handle({
          headers: request.headers,
          rawBody: typeof request.body === 'string' ? request.body : '',
          remoteAddress: request.ip,
        });
        return reply.status(answer.status as 200).send(answer.body);
      },
    });
  });

  const Refusal = z.looseObject({
    at: z.string(),
    channel: z.literal('slack'),
    reason: z.string(),
    message: z.string(),
    slackUser: z.string().optional(),
    principal: z.string().optional(),
    actionId: z.string().optional(),
    decision: z.enum(['approve', 'reject']).optional(),
    code: z.string().optional(),
  });
  addRoute(app, deps.auth, {
    method: 'GET',
    url: '/v1/chat/refusals',
    roles: rolesFor('GET /v1/chat/refusals'),
    summary:
      'Refused chat interactions: bad or stale signatures, unmapped users, decisions the rules turned down',
    description: 'Oldest first, the most recent `limit` (default 500).',
    tags: ['chat', 'audit'],
    query: z.strictObject({ limit: z.coerce.number().int().min(1).max(5000).default(500) }),
    response: {
      200: z.object({ refusals: z.array(Refusal) }),
      400: ErrorBody,
      401: ErrorBody,
      403: ErrorBody,
    },
    handler: async ({ query }) => ({ refusals: deps.refusals?.list(query.limit) ?? [] }),
  });
};
