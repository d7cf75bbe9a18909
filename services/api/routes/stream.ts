import type { EventType, RecordedEvent } from '../../../schemas/events.ts';
import { type ApiRoutes, COMMON_ERRORS } from '../context.ts';
import { addRoute } from '../http.ts';
import { rolesFor } from '../roles.ts';
import { StreamQuery } from '../schemas.ts';

/** The live feed: server-sent events of every new recorded event. */
export const streamRoutes: ApiRoutes = async (app, { ctx }) => {
  addRoute(app, ctx.auth, {
    method: 'GET',
    url: '/v1/stream',
    roles: rolesFor('GET /v1/stream'),
    summary:
      'Server-sent events: every new recorded event (`id` = position, `event` = type, `data` = the event)',
    description:
      'Resume with `Last-Event-ID` or `?after=<position>`; filter with `?types=A,B`. A comment line is sent as a heartbeat.',
    tags: ['ops'],
    query: StreamQuery,
    produces: 'text/event-stream',
    // one server-sent event as a client parses it: `data` is the event's JSON, `id` its position
    response: {
      200: {
        type: 'object',
        properties: {
          event: { type: 'string', description: 'the event type' },
          data: { type: 'string', description: 'the event as JSON' },
          id: { type: 'string', description: 'its position, for Last-Event-ID' },
          retry: { type: 'integer' },
        },
      },
      ...COMMON_ERRORS,
    },
    handler: async ({ query, request, reply }) => {
      const lastId = request.headers['last-event-id'];
      const fromHeader = typeof lastId === 'string' && /^\d+$/.test(lastId) ? Number(lastId) : undefined;
      const after = query.after ?? fromHeader ?? (await ctx.store.headPosition());
      const types = query.types ? (query.types.split(',').map((t) => t.trim()) as EventType[]) : undefined;
      reply.hijack();
      const raw = reply.raw;
      raw.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      raw.write(`retry: 3000\n: tourniquet live feed after position ${after}\n\n`);
      ctx.streams.add(raw);
      const write = async (chunk: string) => {
        if (!raw.write(chunk)) await new Promise<void>((resolve) => raw.once('drain', resolve));
      };
      const sub = ctx.store.subscribeAll(
        {
          after,
          ...(types ? { types } : {}),
          onError: (err) => {
            ctx.log?.warn({ err }, 'live feed subscription stopped');
            raw.end();
          },
        },
        async (e: RecordedEvent) => {
          if (raw.writableEnded) return;
          await write(`id: ${e.position}\nevent: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`);
        },
      );
      const heartbeat = setInterval(() => {
        if (!raw.writableEnded) raw.write(': heartbeat\n\n');
      }, ctx.heartbeatMs);
      heartbeat.unref();
      const cleanup = () => {
        clearInterval(heartbeat);
        ctx.streams.delete(raw);
        void sub.stop();
      };
      raw.on('close', cleanup);
      request.raw.on('close', cleanup);
    },
  });
};
