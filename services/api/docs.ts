import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';

/**
 * Swagger UI at /docs over the OpenAPI document the routes generate (/docs/json): every endpoint
 * with its Markdown description rendered, its schemas, and "Try it out" on by default. Authorize
 * with a bearer token or an API key; a browser signed in to the console also sends its session
 * cookie, which serves GET requests (writes with the cookie need the console's CSRF token).
 */
export async function registerDocs(app: FastifyInstance): Promise<void> {
  await app.register(swaggerUi, {
    routePrefix: '/docs',
    uiConfig: {
      tryItOutEnabled: true,
      deepLinking: true,
      docExpansion: 'list',
      defaultModelsExpandDepth: 0,
      displayRequestDuration: true,
      persistAuthorization: false,
    },
    // Swagger UI sets inline styles while it renders; scripts stay same-origin only
    staticCSP: {
      'default-src': ["'self'"],
      'script-src': ["'self'"],
      'style-src': ["'self'", "'unsafe-inline'"],
      'img-src': ["'self'", 'data:'],
      'connect-src': ["'self'"],
      'frame-ancestors': ["'none'"],
      'object-src': ["'none'"],
    },
  });
}
