import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';

/**
 * The console's static files, read once at start: htmx straight from its npm package (no build
 * step), the console's own script and stylesheet from beside this file.
 */
const require = createRequire(import.meta.url);

const ASSETS: Record<string, { path: string; type: string }> = {
  'htmx.min.js': { path: require.resolve('htmx.org/dist/htmx.min.js'), type: 'text/javascript' },
  'console.js': {
    path: fileURLToPath(new URL('./assets/console.js', import.meta.url)),
    type: 'text/javascript',
  },
  'console.css': { path: fileURLToPath(new URL('./assets/console.css', import.meta.url)), type: 'text/css' },
};

export function registerAssets(app: FastifyInstance): void {
  const files = new Map(
    Object.entries(ASSETS).map(([name, a]) => [name, { body: readFileSync(a.path), type: a.type }]),
  );
  app.get<{ Params: { name: string } }>('/assets/:name', async (request, reply) => {
    const f = files.get(request.params.name);
    if (!f)
      return reply
        .status(404)
        .send({ error: { code: 'NOT_FOUND', message: `no asset ${request.params.name}` } });
    return reply
      .header('content-type', `${f.type}; charset=utf-8`)
      .header('cache-control', 'public, max-age=300')
      .header('x-content-type-options', 'nosniff')
      .send(f.body);
  });
}
