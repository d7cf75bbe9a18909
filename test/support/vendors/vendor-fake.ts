/**
 * A local stand-in for a SaaS vendor's API: an HTTP server on 127.0.0.1 (random port) that checks every
 * request against the operations extracted from the vendor's published description
 * (test/fixtures/vendors/<vendor>/operations.json) and records each deviation: an undescribed route or
 * method, an undeclared or ill-typed query parameter, a missing required parameter, a body where none is
 * described, or a body that breaks the schema (including a property the description does not have).
 * A deviating request gets a 400 in the vendor's error format, and `assertNoDeviations()` fails the test.
 * Replies are checked against the described response schema too, so the fake cannot drift from the vendor.
 *
 * State lives in the vendor-specific handlers (github-fake.ts, okta-fake.ts, …); `failNext` makes the
 * next matching calls answer with a documented error (401, 403, 404, 409, 429 with Retry-After, 5xx).
 */
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { VendorDescription, VendorOperation } from './extract-descriptions.ts';

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

export interface FakeRequest {
  op: VendorOperation;
  method: string;
  path: string;
  params: Record<string, string>;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  body: unknown;
  rawBody: string;
}
export interface FakeReply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}
type FakeHandler = (req: FakeRequest) => FakeReply | Promise<FakeReply>;
/** A route outside the description (a token endpoint): handled as is, not validated. */
type RawHandler = (req: {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  rawBody: string;
}) => FakeReply | Promise<FakeReply>;

export interface VendorFakeOptions {
  vendor: string;
  /** Prefix before the described paths (Graph: /v1.0, Okta: ''). */
  basePath?: string;
  handlers: Record<string, FakeHandler>;
  /** The vendor's documented error body for a status. */
  errorBody(status: number, message: string): unknown;
  /** Extra headers on an injected 429 besides Retry-After (vendor rate-limit headers). */
  rateLimitHeaders?(retryAfterSeconds: number): Record<string, string>;
  /** Authentication check for described routes: a reply (401/403) to refuse, or null to go on. */
  authenticate?(req: FakeRequest): FakeReply | null;
  raw?: Record<string, RawHandler>;
}

export interface InjectedFault {
  status: number;
  retryAfterSeconds?: number;
  times?: number;
  message?: string;
}

export interface CallRecord {
  method: string;
  path: string;
  op: string | null;
  status: number;
  query: string;
  body: unknown;
}

/** Adds additionalProperties:false to every object schema that lists its properties (requests only). */
function strictObjects(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(strictObjects);
  if (!v || typeof v !== 'object') return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v as Record<string, unknown>))
    out[k] =
      k === 'properties'
        ? Object.fromEntries(Object.entries(x as object).map(([p, s]) => [p, strictObjects(s)]))
        : strictObjects(x);
  const composite = 'allOf' in out || 'oneOf' in out || 'anyOf' in out;
  if ('properties' in out && !('additionalProperties' in out) && !composite) out.additionalProperties = false;
  return out;
}

function rootRefs(schema: unknown, root: string): unknown {
  return JSON.parse(
    JSON.stringify(nullables(schema)).replaceAll('"#/definitions/', `"${root}#/definitions/`),
  );
}

/** OpenAPI 3.0 `nullable: true` in JSON Schema terms (null added to the type, or as an alternative). */
function nullables(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(nullables);
  if (!v || typeof v !== 'object') return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v as Record<string, unknown>))
    out[k] =
      k === 'properties'
        ? Object.fromEntries(Object.entries(x as object).map(([p, s]) => [p, nullables(s)]))
        : nullables(x);
  if (out.nullable !== true) {
    delete out.nullable;
    return out;
  }
  delete out.nullable;
  if (Array.isArray(out.enum) && !out.enum.includes(null)) out.enum = [...out.enum, null];
  if (typeof out.type === 'string') return { ...out, type: [out.type, 'null'] };
  return { anyOf: [out, { type: 'null' }] };
}

export function loadDescription(vendor: string): VendorDescription {
  const p = join(import.meta.dirname, '..', '..', 'fixtures', 'vendors', vendor, 'operations.json');
  return JSON.parse(readFileSync(p, 'utf8')) as VendorDescription;
}

/** Compiled validators for one vendor's operations. */
export class DescriptionValidator {
  readonly description: VendorDescription;
  private readonly ajv: Ajv;
  private readonly cache = new Map<string, ValidateFunction>();
  private readonly routes: Array<{ op: VendorOperation; re: RegExp; names: string[] }>;

  constructor(vendor: string) {
    this.description = loadDescription(vendor);
    this.ajv = new Ajv({ strict: false, allErrors: true, discriminator: false, logger: false });
    addFormats(this.ajv);
    this.ajv.addSchema({ $id: `${vendor}-lenient`, definitions: nullables(this.description.definitions) });
    this.ajv.addSchema({
      $id: `${vendor}-strict`,
      definitions: nullables(strictObjects(this.description.definitions)),
    });
    this.routes = this.description.operations.map((op) => {
      const names: string[] = [];
      const re = new RegExp(
        `^${op.path.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{(\w+)\}/g, (_m, n: string) => {
          names.push(n);
          return '([^/]+)';
        })}$`,
      );
      return { op, re, names };
    });
  }

  private compile(key: string, schema: unknown, strict: boolean): ValidateFunction {
    let v = this.cache.get(key);
    if (!v) {
      const root = `${this.description.vendor}-${strict ? 'strict' : 'lenient'}`;
      v = this.ajv.compile(rootRefs(strict ? strictObjects(schema) : schema, root) as object);
      this.cache.set(key, v);
    }
    return v;
  }

  /** The operation a method + path names, with its decoded path parameters (undefined: undescribed). */
  match(method: string, path: string): { op: VendorOperation; params: Record<string, string> } | undefined {
    // A literal segment wins over a parameter ({key_id} vs a fixed name): most specific first.
    const hits = this.routes
      .filter((r) => r.op.method === method)
      .map((r) => ({ r, m: r.re.exec(path) }))
      .filter((h) => h.m)
      .sort((a, b) => a.r.names.length - b.r.names.length);
    const h = hits[0];
    if (!h) return undefined;
    const params: Record<string, string> = {};
    h.r.names.forEach((n, i) => {
      params[n] = decodeURIComponent(h.m![i + 1]!);
    });
    return { op: h.r.op, params };
  }

  /** A parameter schema with its top-level $ref followed (to know which type a text value stands for). */
  private resolve(schema: Record<string, unknown>): Record<string, unknown> {
    const ref = typeof schema.$ref === 'string' ? /^#\/definitions\/(.+)$/.exec(schema.$ref) : null;
    return ref ? this.resolve(this.description.definitions[ref[1]!] ?? {}) : schema;
  }

  /** Every way the request deviates from the description (empty: conforms). */
  checkRequest(
    op: VendorOperation,
    params: Record<string, string>,
    query: URLSearchParams,
    contentType: string | undefined,
    rawBody: string,
  ): { errors: string[]; body: unknown } {
    const errors: string[] = [];
    const declared = new Map(op.parameters.map((p) => [p.name, p]));
    for (const p of op.parameters) {
      const value = p.in === 'path' ? params[p.name] : (query.get(p.name) ?? undefined);
      if (value === undefined) {
        if (p.required) errors.push(`${p.in} parameter ${p.name} is required`);
        continue;
      }
      const v = this.compile(`${op.id}:param:${p.name}`, p.schema, false);
      if (!v(coerce(value, this.resolve(p.schema))))
        errors.push(`${p.in} parameter ${p.name}=${value}: ${this.ajv.errorsText(v.errors)}`);
    }
    for (const name of new Set(query.keys()))
      if (declared.get(name)?.in !== 'query') errors.push(`query parameter ${name} is not described`);
    let body: unknown;
    if (rawBody !== '') {
      if (!op.requestBody) errors.push('a body was sent but the operation takes none');
      else if (!(contentType ?? '').startsWith(op.requestBody.contentType))
        errors.push(
          `content-type ${contentType ?? '(none)'} where ${op.requestBody.contentType} is described`,
        );
      else {
        try {
          body = op.requestBody.contentType.includes('json')
            ? JSON.parse(rawBody)
            : Object.fromEntries(new URLSearchParams(rawBody));
        } catch {
          errors.push('the body is not valid JSON');
        }
        if (body !== undefined) {
          const v = this.compile(`${op.id}:body`, op.requestBody.schema, true);
          if (!v(body)) errors.push(`body: ${this.ajv.errorsText(v.errors, { dataVar: 'body' })}`);
        }
      }
    } else if (op.requestBody?.required) errors.push('the described request body is missing');
    return { errors, body };
  }

  /** Deviations of a reply from the described response for its status. */
  checkReply(op: VendorOperation, status: number, body: unknown): string[] {
    if (!(String(status) in op.responses)) {
      const documented = Object.keys(op.responses);
      // Errors the vendor documents for every operation (auth, rate limit, outage) are always allowed.
      if ([400, 401, 403, 404, 409, 429, 500, 502, 503].includes(status)) return [];
      return [`status ${status} is not described (described: ${documented.join(', ')})`];
    }
    const schema = op.responses[String(status)];
    if (!schema || body === undefined) return [];
    const v = this.compile(`${op.id}:reply:${status}`, schema, false);
    return v(body) ? [] : [`reply ${status}: ${this.ajv.errorsText(v.errors, { dataVar: 'reply' })}`];
  }
}

function coerce(value: string, schema: Record<string, unknown>): unknown {
  if (schema.type === 'boolean') return value === 'true' ? true : value === 'false' ? false : value;
  if (schema.type === 'integer' || schema.type === 'number')
    return /^-?\d+(\.\d+)?$/.test(value) ? Number(value) : value;
  if (schema.type === 'array') return value.split(',');
  return value;
}

export class VendorFake {
  readonly validator: DescriptionValidator;
  readonly deviations: string[] = [];
  readonly calls: CallRecord[] = [];
  private readonly o: VendorFakeOptions;
  private readonly faults: Array<{ op: string; fault: InjectedFault }> = [];
  private server: Server | null = null;
  url = '';

  constructor(o: VendorFakeOptions) {
    this.o = o;
    this.validator = new DescriptionValidator(o.vendor);
  }

  async start(): Promise<string> {
    this.server = createServer((req, res) => {
      void this.handle(req, res).catch((err: unknown) => {
        this.deviations.push(`fake crashed on ${req.method} ${req.url}: ${(err as Error).stack}`);
        this.send(res, { status: 500, body: this.o.errorBody(500, 'fake crashed') });
      });
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}${this.o.basePath ?? ''}`;
    return this.url;
  }

  async stop(): Promise<void> {
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server!.close(() => r()));
    this.server = null;
  }

  /** The next `times` (default 1) calls of an operation id ('*': any) answer with this error. */
  failNext(op: string, fault: InjectedFault): void {
    this.faults.push({ op, fault: { times: 1, ...fault } });
  }

  /** Throws the recorded deviations (and forgets them, so one failing test does not fail the next). */
  assertNoDeviations(): void {
    const found = this.deviations.splice(0);
    if (found.length > 0)
      throw new Error(`requests deviate from the ${this.o.vendor} description:\n${found.join('\n')}`);
  }

  callsOf(op: string): CallRecord[] {
    return this.calls.filter((c) => c.op === op);
  }

  private send(res: ServerResponse, reply: FakeReply): void {
    const text = reply.body === undefined ? '' : JSON.stringify(reply.body);
    res.writeHead(reply.status, {
      ...(text ? { 'content-type': 'application/json' } : {}),
      ...(reply.headers ?? {}),
    });
    res.end(text);
  }

  private takeFault(op: string): InjectedFault | undefined {
    const i = this.faults.findIndex((f) => f.op === op || f.op === '*');
    if (i < 0) return undefined;
    const f = this.faults[i]!;
    f.fault.times = (f.fault.times ?? 1) - 1;
    if (f.fault.times <= 0) this.faults.splice(i, 1);
    return f.fault;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const rawBody = Buffer.concat(chunks).toString('utf8');
    const url = new URL(req.url ?? '/', 'http://fake');
    const method = req.method ?? 'GET';
    const base = this.o.basePath ?? '';
    const raw = this.o.raw?.[`${method} ${url.pathname}`];
    if (raw) return this.send(res, await raw({ method, path: url.pathname, headers: req.headers, rawBody }));
    const path = url.pathname.startsWith(base) ? url.pathname.slice(base.length) : url.pathname;
    const hit = this.validator.match(method, path);
    const record: CallRecord = {
      method,
      path,
      op: hit?.op.id ?? null,
      status: 0,
      query: url.search,
      body: undefined,
    };
    this.calls.push(record);
    if (!hit) {
      this.deviations.push(`${method} ${path}: no such operation in the description`);
      record.status = 404;
      return this.send(res, {
        status: 404,
        body: this.o.errorBody(404, `${method} ${path} is not described`),
      });
    }
    const { errors, body } = this.validator.checkRequest(
      hit.op,
      hit.params,
      url.searchParams,
      req.headers['content-type'],
      rawBody,
    );
    record.body = body;
    if (errors.length > 0) {
      this.deviations.push(...errors.map((e) => `${method} ${path} (${hit.op.id}): ${e}`));
      record.status = 400;
      return this.send(res, { status: 400, body: this.o.errorBody(400, errors.join('; ')) });
    }
    const freq: FakeRequest = {
      op: hit.op,
      method,
      path,
      params: hit.params,
      query: url.searchParams,
      headers: req.headers,
      body,
      rawBody,
    };
    const denied = this.o.authenticate?.(freq);
    if (denied) {
      record.status = denied.status;
      return this.send(res, denied);
    }
    const fault = this.takeFault(hit.op.id);
    if (fault) {
      const headers: Record<string, string> = {};
      if (fault.retryAfterSeconds !== undefined) {
        headers['retry-after'] = String(fault.retryAfterSeconds);
        Object.assign(headers, this.o.rateLimitHeaders?.(fault.retryAfterSeconds) ?? {});
      }
      record.status = fault.status;
      return this.send(res, {
        status: fault.status,
        headers,
        body: this.o.errorBody(fault.status, fault.message ?? `injected ${fault.status}`),
      });
    }
    const handler = this.o.handlers[hit.op.id];
    if (!handler) {
      this.deviations.push(`${method} ${path}: the fake has no handler for ${hit.op.id}`);
      record.status = 501;
      return this.send(res, { status: 501, body: this.o.errorBody(501, 'not implemented by the fake') });
    }
    const reply = await handler(freq);
    this.deviations.push(
      ...this.validator
        .checkReply(hit.op, reply.status, reply.body)
        .map((e) => `fake reply to ${method} ${path}: ${e}`),
    );
    record.status = reply.status;
    this.send(res, reply);
  }
}
