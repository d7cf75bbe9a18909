import { z } from 'zod';
import { TourniquetError } from '../../../platform/errors.ts';
import type { ApiRoutes } from '../context.ts';
import { addRoute, ErrorBody } from '../http.ts';
import { rolesFor } from '../roles.ts';

/** Shared Signals out: transmitter status, its public keys and its SSF configuration. */
export const signalsRoutes: ApiRoutes = async (app, { ctx }) => {
  const signals = ctx.signals;
  const noSignals = () =>
    new TourniquetError('NOT_FOUND', 'no Shared Signals transmitter runs here (providers file: signals)', {
      status: 404,
    });
  const Jwks = z.object({ keys: z.array(z.record(z.string(), z.unknown())) });
  addRoute(app, ctx.auth, {
    method: 'GET',
    url: '/v1/signals',
    roles: rolesFor('GET /v1/signals'),
    summary: 'Shared Signals out: the transmitter and where each receiver stands',
    description:
      'CAEP/RISC Security Event Tokens pushed to receivers for containment that took effect (docs/signals.md). `position` is the last event each receiver has had; compare it with `head`.',
    tags: ['signals'],
    response: {
      200: z.object({
        configured: z.boolean(),
        issuer: z.string().nullable(),
        head: z.number().int(),
        receivers: z.array(
          z.object({
            name: z.string(),
            url: z.string(),
            audience: z.string(),
            events: z.array(z.string()).nullable(),
            running: z.boolean(),
            position: z.number().int(),
            delivered: z.number().int(),
            deadLettered: z.number().int(),
            retries: z.number().int(),
          }),
        ),
      }),
      401: ErrorBody,
      403: ErrorBody,
    },
    handler: async () => ({
      configured: signals !== undefined,
      issuer: signals?.issuer ?? null,
      head: await ctx.store.headPosition(),
      receivers: signals ? await signals.status() : [],
    }),
  });

  addRoute(app, ctx.auth, {
    method: 'GET',
    url: '/v1/signals/jwks',
    roles: rolesFor('GET /v1/signals/jwks'),
    summary: 'The public keys that verify the SETs this transmitter signs',
    tags: ['signals'],
    response: { 200: Jwks, 404: ErrorBody },
    handler: async () => {
      if (!signals) throw noSignals();
      return signals.jwks();
    },
  });

  addRoute(app, ctx.auth, {
    method: 'GET',
    url: '/.well-known/ssf-configuration',
    roles: rolesFor('GET /.well-known/ssf-configuration'),
    summary: 'Shared Signals transmitter configuration metadata (SSF 1.0)',
    description:
      'Push delivery only (RFC 8935); receivers are configured by the operator, not through a stream API.',
    tags: ['signals'],
    response: {
      200: z.object({
        spec_version: z.string(),
        issuer: z.string(),
        jwks_uri: z.string(),
        delivery_methods_supported: z.array(z.string()),
      }),
      404: ErrorBody,
    },
    handler: async ({ request }) => {
      if (!signals) throw noSignals();
      return {
        spec_version: '1_0',
        issuer: signals.issuer,
        jwks_uri: `${request.protocol}://${request.host}/v1/signals/jwks`,
        delivery_methods_supported: ['urn:ietf:rfc:8935'],
      };
    },
  });
};
