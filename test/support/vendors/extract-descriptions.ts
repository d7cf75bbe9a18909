/**
 * Extracts the operations the SaaS adapters call from each vendor's published API description into
 * test/fixtures/vendors/<vendor>/operations.json, one normalised shape for all four:
 *
 *   { vendor, source, operations: [{ id, method, path, parameters, requestBody, responses }], definitions }
 *
 * `path` is the URL path template ({name} segments), `parameters` the path and query parameters with a
 * JSON Schema each, `requestBody` { required, contentType, schema } or null, `responses` status → JSON
 * Schema (or null for an empty body); every `$ref` points into `definitions` (#/definitions/Name).
 * The fake vendor servers (test/support/vendors/) validate each request against this file with ajv.
 *
 * Run again when a description changes (paths are the downloaded descriptions, see each SOURCE.md):
 *   node --import tsx test/support/vendors/extract-descriptions.ts github node_modules/@octokit/openapi/generated/api.github.com.json
 *   node --import tsx test/support/vendors/extract-descriptions.ts okta management-minimal.yaml oauth-minimal.yaml
 *   node --import tsx test/support/vendors/extract-descriptions.ts google admin.directory_v1.json
 *   node --import tsx test/support/vendors/extract-descriptions.ts entra cleanMetadata.xml
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';

type Json = Record<string, unknown>;
interface VendorParameter {
  name: string;
  in: 'path' | 'query';
  required: boolean;
  schema: Json;
}
export interface VendorOperation {
  id: string;
  method: string;
  path: string;
  parameters: VendorParameter[];
  requestBody: { required: boolean; contentType: string; schema: Json } | null;
  responses: Record<string, Json | null>;
}
export interface VendorDescription {
  vendor: string;
  source: string;
  operations: VendorOperation[];
  definitions: Record<string, Json>;
}

/** The operations each adapter uses: (method, path) as the description spells them. */
export const USED: Record<string, Array<[string, string]>> = {
  github: [
    ['post', '/credentials/revoke'],
    ['get', '/rate_limit'],
    ['get', '/repos/{owner}/{repo}/secret-scanning/alerts/{alert_number}'],
    ['patch', '/repos/{owner}/{repo}/secret-scanning/alerts/{alert_number}'],
    ['get', '/repos/{owner}/{repo}/keys'],
    ['get', '/repos/{owner}/{repo}/keys/{key_id}'],
    ['post', '/repos/{owner}/{repo}/keys'],
    ['delete', '/repos/{owner}/{repo}/keys/{key_id}'],
    ['delete', '/applications/{client_id}/grant'],
    ['post', '/applications/{client_id}/token'],
    ['get', '/orgs/{org}/personal-access-tokens'],
    ['post', '/orgs/{org}/personal-access-tokens/{pat_id}'],
  ],
  okta: [
    ['get', '/api/v1/users/{id}'],
    ['delete', '/api/v1/users/{userId}/sessions'],
    ['post', '/api/v1/users/{id}/lifecycle/suspend'],
    ['post', '/api/v1/users/{id}/lifecycle/unsuspend'],
    ['post', '/api/v1/users/{id}/lifecycle/expire_password'],
    ['post', '/api/v1/users/{id}/lifecycle/reset_factors'],
    ['get', '/api/v1/users/{userId}/factors'],
    ['get', '/api/v1/users/{userId}/clients'],
    ['get', '/api/v1/users/{userId}/clients/{clientId}/tokens'],
    ['delete', '/api/v1/users/{userId}/clients/{clientId}/tokens'],
    ['get', '/api/v1/users/{userId}/clients/{clientId}/grants'],
    ['delete', '/api/v1/users/{userId}/clients/{clientId}/grants'],
    ['get', '/api/v1/users/{userId}/risk'],
    ['put', '/api/v1/users/{userId}/risk'],
    ['post', '/oauth2/v1/global-token-revocation'],
    ['get', '/api/v1/logs'],
  ],
  google: [
    ['get', 'admin/directory/v1/users/{userKey}'],
    ['put', 'admin/directory/v1/users/{userKey}'],
    ['post', 'admin/directory/v1/users/{userKey}/signOut'],
    ['get', 'admin/directory/v1/users/{userKey}/tokens'],
    ['delete', 'admin/directory/v1/users/{userKey}/tokens/{clientId}'],
    ['get', 'admin/directory/v1/users/{userKey}/verificationCodes'],
    ['post', 'admin/directory/v1/users/{userKey}/verificationCodes/invalidate'],
  ],
};

const OUT = (vendor: string) => join(import.meta.dirname, '..', '..', 'fixtures', 'vendors', vendor);

// ------------------------------------------------------------------ OpenAPI 3.0 (GitHub, Okta)

/** Replaces #/components/{parameters,requestBodies,responses}/X by their content; schemas stay $refs. */
function resolveComponent(doc: Json, v: unknown): unknown {
  if (v && typeof v === 'object' && '$ref' in v) {
    const ref = (v as { $ref: string }).$ref;
    const m = /^#\/components\/(parameters|requestBodies|responses|headers)\/(.+)$/.exec(ref);
    if (m) return resolveComponent(doc, ((doc.components as Json)[m[1]!] as Json)[m[2]!]);
  }
  return v;
}

const DROP = new Set(['example', 'examples', 'description', 'summary', 'externalDocs', 'title']);

/** A schema copy without prose, `#/components/schemas/X` → `#/definitions/X`, collecting each X. */
function cleanSchema(v: unknown, refs: Set<string>): unknown {
  if (Array.isArray(v)) return v.map((x) => cleanSchema(x, refs));
  if (!v || typeof v !== 'object') return v;
  const out: Json = {};
  for (const [k, x] of Object.entries(v as Json)) {
    if (k === '$ref' && typeof x === 'string') {
      const name = x.replace('#/components/schemas/', '');
      refs.add(name);
      out.$ref = `#/definitions/${name}`;
    } else if (k === 'properties' && x && typeof x === 'object') {
      // property names are data here, never keywords: keep all of them
      out.properties = Object.fromEntries(
        Object.entries(x as Json).map(([p, s]) => [p, cleanSchema(s, refs)]),
      );
    } else if (!DROP.has(k) && !k.startsWith('x-')) out[k] = cleanSchema(x, refs);
  }
  return out;
}

export function openApiOperations(
  docs: Json[],
  used: Array<[string, string]>,
): Omit<VendorDescription, 'vendor' | 'source'> {
  const operations: VendorOperation[] = [];
  const definitions: Record<string, Json> = {};
  const pending = new Set<string>();
  const docOfSchema = new Map<string, Json>();
  for (const [method, path] of used) {
    const doc = docs.find((d) => (d.paths as Json)[path]);
    if (!doc) throw new Error(`no description has ${path}`);
    const item = (doc.paths as Json)[path] as Json;
    const op = item[method] as Json | undefined;
    if (!op) throw new Error(`${method.toUpperCase()} ${path} is not described`);
    const refs = new Set<string>();
    const params = [...((item.parameters as unknown[]) ?? []), ...((op.parameters as unknown[]) ?? [])]
      .map((p) => resolveComponent(doc, p) as Json)
      .filter((p) => p.in === 'path' || p.in === 'query')
      .map((p) => ({
        name: p.name as string,
        in: p.in as 'path' | 'query',
        required: Boolean(p.required),
        schema: cleanSchema(p.schema ?? {}, refs) as Json,
      }));
    let requestBody: VendorOperation['requestBody'] = null;
    const rb = resolveComponent(doc, op.requestBody) as Json | undefined;
    if (rb) {
      const content = rb.content as Record<string, Json>;
      const contentType = Object.keys(content)[0]!;
      requestBody = {
        required: Boolean(rb.required),
        contentType,
        schema: cleanSchema(content[contentType]!.schema ?? {}, refs) as Json,
      };
    }
    const responses: Record<string, Json | null> = {};
    for (const [status, r] of Object.entries((op.responses as Json) ?? {})) {
      const res = resolveComponent(doc, r) as Json;
      const content = res.content as Record<string, Json> | undefined;
      const json = content?.['application/json'] ?? (content ? Object.values(content)[0] : undefined);
      responses[status] = json?.schema ? (cleanSchema(json.schema, refs) as Json) : null;
    }
    for (const r of refs) {
      pending.add(r);
      docOfSchema.set(r, doc);
    }
    operations.push({
      id: (op.operationId as string) ?? `${method} ${path}`,
      method: method.toUpperCase(),
      path,
      parameters: params,
      requestBody,
      responses,
    });
  }
  // Transitive closure of the referenced component schemas, from the document that named them.
  while (pending.size > 0) {
    const name = pending.values().next().value as string;
    pending.delete(name);
    if (definitions[name]) continue;
    const doc = docOfSchema.get(name)!;
    const schema = ((doc.components as Json).schemas as Json)[name];
    if (!schema) throw new Error(`schema ${name} is missing`);
    const refs = new Set<string>();
    definitions[name] = cleanSchema(schema, refs) as Json;
    for (const r of refs)
      if (!definitions[r]) {
        pending.add(r);
        docOfSchema.set(r, doc);
      }
  }
  return { operations, definitions };
}

// ------------------------------------------------------------------ Google discovery document

function discoverySchema(v: unknown, refs: Set<string>): unknown {
  if (Array.isArray(v)) return v.map((x) => discoverySchema(x, refs));
  if (!v || typeof v !== 'object') return v;
  const out: Json = {};
  for (const [k, x] of Object.entries(v as Json)) {
    if (k === '$ref' && typeof x === 'string') {
      refs.add(x);
      out.$ref = `#/definitions/${x}`;
    } else if (k === 'properties' && x && typeof x === 'object') {
      out.properties = Object.fromEntries(
        Object.entries(x as Json).map(([p, s]) => [p, discoverySchema(s, refs)]),
      );
    } else if (k === 'type' && x === 'any') {
      // "any" is discovery's word for no constraint
    } else if (k === 'format' && (x === 'int64' || x === 'uint64' || x === 'google-datetime')) {
      // 64-bit integers and timestamps travel as strings; ajv-formats does not know these names
    } else if (['id', 'description', 'enumDescriptions', 'annotations', 'readOnly', 'default'].includes(k)) {
      // prose and client hints
    } else out[k] = discoverySchema(x, refs);
  }
  return out;
}

function discoveryOperations(
  doc: Json,
  used: Array<[string, string]>,
): Omit<VendorDescription, 'vendor' | 'source'> {
  const methods: Json[] = [];
  const walk = (resources: Json) => {
    for (const r of Object.values(resources) as Json[]) {
      for (const m of Object.values((r.methods as Json) ?? {}) as Json[]) methods.push(m);
      if (r.resources) walk(r.resources as Json);
    }
  };
  walk(doc.resources as Json);
  const operations: VendorOperation[] = [];
  const definitions: Record<string, Json> = {};
  const pending = new Set<string>();
  for (const [method, path] of used) {
    const m = methods.find((x) => x.httpMethod === method.toUpperCase() && x.path === path);
    if (!m) throw new Error(`${method.toUpperCase()} ${path} is not in the discovery document`);
    const refs = new Set<string>();
    const parameters = Object.entries((m.parameters as Record<string, Json>) ?? {}).map(([name, p]) => ({
      name,
      in: p.location as 'path' | 'query',
      required: Boolean(p.required),
      schema: discoverySchema({ type: p.type, ...(p.enum ? { enum: p.enum } : {}) }, refs) as Json,
    }));
    const reqRef = (m.request as Json | undefined)?.$ref as string | undefined;
    const resRef = (m.response as Json | undefined)?.$ref as string | undefined;
    if (reqRef) refs.add(reqRef);
    if (resRef) refs.add(resRef);
    for (const r of refs) pending.add(r);
    operations.push({
      id: m.id as string,
      method: m.httpMethod as string,
      path: `/${path}`,
      parameters,
      requestBody: reqRef
        ? { required: true, contentType: 'application/json', schema: { $ref: `#/definitions/${reqRef}` } }
        : null,
      responses: { '200': resRef ? { $ref: `#/definitions/${resRef}` } : null, '204': null },
    });
  }
  while (pending.size > 0) {
    const name = pending.values().next().value as string;
    pending.delete(name);
    if (definitions[name]) continue;
    const refs = new Set<string>();
    definitions[name] = discoverySchema((doc.schemas as Json)[name], refs) as Json;
    for (const r of refs) if (!definitions[r]) pending.add(r);
  }
  return { operations, definitions };
}

// ------------------------------------------------------------------ Microsoft Graph CSDL

interface CsdlType {
  base: string | undefined;
  props: Array<{ name: string; type: string; nullable: boolean }>;
}

/** The EntityType / ComplexType / EnumType definitions of the microsoft.graph namespace. */
function csdlTypes(xml: string): { types: Map<string, CsdlType>; enums: Map<string, string[]> } {
  const ns = xml.slice(0, xml.indexOf('<Schema Namespace="microsoft.graph.callRecords"'));
  const types = new Map<string, CsdlType>();
  for (const m of ns.matchAll(/<(EntityType|ComplexType) Name="(\w+)"([^>]*?)(\/>|>([\s\S]*?)<\/\1>)/g)) {
    const base = /BaseType="graph\.(\w+)"/.exec(m[3]!)?.[1];
    const props = [...(m[5] ?? '').matchAll(/<Property Name="(\w+)" Type="([^"]+)"([^>]*)\/>/g)].map((p) => ({
      name: p[1]!,
      type: p[2]!,
      nullable: !/Nullable="false"/.test(p[3]!),
    }));
    types.set(m[2]!, { base, props });
  }
  const enums = new Map<string, string[]>();
  for (const m of ns.matchAll(/<EnumType Name="(\w+)"[^>]*>([\s\S]*?)<\/EnumType>/g))
    enums.set(
      m[1]!,
      [...m[2]!.matchAll(/<Member Name="(\w+)"/g)].map((x) => x[1]!),
    );
  return { types, enums };
}

const EDM: Record<string, Json> = {
  'Edm.String': { type: 'string' },
  'Edm.Boolean': { type: 'boolean' },
  'Edm.Int32': { type: 'integer' },
  'Edm.Int64': { type: 'integer' },
  'Edm.Double': { type: 'number' },
  'Edm.Guid': { type: 'string', format: 'uuid' },
  'Edm.DateTimeOffset': { type: 'string', format: 'date-time' },
  'Edm.Date': { type: 'string', format: 'date' },
  'Edm.Binary': { type: 'string' },
  'Edm.Duration': { type: 'string' },
  'Edm.TimeOfDay': { type: 'string' },
};

/** JSON Schema for a CSDL type reference; complex/entity types become #/definitions refs. */
function csdlTypeSchema(t: string, nullable: boolean, want: Set<string>, enums: Map<string, string[]>): Json {
  const coll = /^Collection\((.+)\)$/.exec(t);
  if (coll) return { type: 'array', items: csdlTypeSchema(coll[1]!, false, want, enums) };
  let s: Json;
  if (EDM[t]) s = { ...EDM[t] };
  else if (t.startsWith('graph.')) {
    const name = t.slice(6);
    if (enums.has(name)) s = { type: 'string', enum: enums.get(name) };
    else {
      want.add(name);
      s = { $ref: `#/definitions/${name}` };
    }
  } else s = {};
  return nullable ? (s.$ref ? { anyOf: [s, { type: 'null' }] } : { ...s, nullable: true }) : s;
}

/** Graph entity/complex type → JSON Schema with every (inherited) property; OData annotations allowed. */
function csdlDefinitions(xml: string, roots: string[]): Record<string, Json> {
  const { types, enums } = csdlTypes(xml);
  const definitions: Record<string, Json> = {};
  const pending = new Set(roots);
  while (pending.size > 0) {
    const name = pending.values().next().value as string;
    pending.delete(name);
    if (definitions[name]) continue;
    const properties: Json = {};
    const want = new Set<string>();
    for (let t: string | undefined = name; t; t = types.get(t)?.base) {
      const def = types.get(t);
      if (!def) throw new Error(`graph type ${t} is missing`);
      for (const p of def.props) properties[p.name] = csdlTypeSchema(p.type, p.nullable, want, enums);
    }
    // Navigation properties, open types and @odata.* annotations are outside what we check.
    definitions[name] = { type: 'object', properties };
    for (const w of want) if (!definitions[w]) pending.add(w);
  }
  return definitions;
}

/** A bound action's parameters (after the binding parameter) as a request-body schema. */
function csdlActionBody(xml: string, action: string, binding: string): Json {
  const re = new RegExp(`<Action Name="${action}" IsBound="true">([\\s\\S]*?)</Action>`, 'g');
  for (const m of xml.matchAll(re)) {
    const params = [...m[1]!.matchAll(/<Parameter Name="(\w+)" Type="([^"]+)"([^>]*)\/>/g)];
    if (params[0]?.[2] !== binding) continue;
    const { enums } = csdlTypes(xml);
    const properties: Json = {};
    const required: string[] = [];
    for (const p of params.slice(1)) {
      const nullable = !/Nullable="false"/.test(p[3]!);
      properties[p[1]!] = csdlTypeSchema(p[2]!, nullable, new Set(), enums);
      if (!nullable) required.push(p[1]!);
    }
    return { type: 'object', properties, ...(required.length ? { required } : {}) };
  }
  throw new Error(`no action ${action} bound to ${binding}`);
}

function graphOperations(xml: string): Omit<VendorDescription, 'vendor' | 'source'> {
  const definitions = csdlDefinitions(xml, [
    'user',
    'servicePrincipal',
    'longRunningOperation',
    'passwordResetResponse',
    'passwordAuthenticationMethod',
  ]);
  const odataId = { name: 'id', in: 'path' as const, required: true, schema: { type: 'string' } };
  const selectParam = { name: '$select', in: 'query' as const, required: false, schema: { type: 'string' } };
  const filterParam = { name: '$filter', in: 'query' as const, required: false, schema: { type: 'string' } };
  const json = (schema: Json) => ({ required: true, contentType: 'application/json', schema });
  const list = (item: string) => ({
    type: 'object',
    properties: { value: { type: 'array', items: { $ref: `#/definitions/${item}` } } },
    required: ['value'],
  });
  const ops: VendorOperation[] = [
    {
      id: 'user.get',
      method: 'GET',
      path: '/users/{id}',
      parameters: [odataId, selectParam],
      requestBody: null,
      responses: { '200': { $ref: '#/definitions/user' } },
    },
    {
      id: 'user.update',
      method: 'PATCH',
      path: '/users/{id}',
      parameters: [odataId],
      requestBody: json({ $ref: '#/definitions/user' }),
      responses: { '204': null },
    },
    {
      id: 'user.revokeSignInSessions',
      method: 'POST',
      path: '/users/{id}/revokeSignInSessions',
      parameters: [odataId],
      requestBody: null,
      responses: { '200': { type: 'object', properties: { value: { type: 'boolean' } } } },
    },
    {
      id: 'authenticationMethod.resetPassword',
      method: 'POST',
      path: '/users/{id}/authentication/methods/{methodId}/resetPassword',
      parameters: [odataId, { name: 'methodId', in: 'path', required: true, schema: { type: 'string' } }],
      requestBody: {
        ...json(csdlActionBody(xml, 'resetPassword', 'graph.authenticationMethod')),
        required: false,
      },
      responses: { '202': null, '200': { $ref: '#/definitions/passwordResetResponse' } },
    },
    {
      id: 'authentication.operations.get',
      method: 'GET',
      path: '/users/{id}/authentication/operations/{operationId}',
      parameters: [odataId, { name: 'operationId', in: 'path', required: true, schema: { type: 'string' } }],
      requestBody: null,
      responses: { '200': { $ref: '#/definitions/longRunningOperation' } },
    },
    {
      id: 'servicePrincipal.list',
      method: 'GET',
      path: '/servicePrincipals',
      parameters: [filterParam, selectParam],
      requestBody: null,
      responses: { '200': list('servicePrincipal') },
    },
    {
      id: 'servicePrincipal.get',
      method: 'GET',
      path: '/servicePrincipals/{id}',
      parameters: [odataId, selectParam],
      requestBody: null,
      responses: { '200': { $ref: '#/definitions/servicePrincipal' } },
    },
    {
      id: 'servicePrincipal.update',
      method: 'PATCH',
      path: '/servicePrincipals/{id}',
      parameters: [odataId],
      requestBody: json({ $ref: '#/definitions/servicePrincipal' }),
      responses: { '204': null },
    },
    {
      id: 'servicePrincipal.removePassword',
      method: 'POST',
      path: '/servicePrincipals/{id}/removePassword',
      parameters: [odataId],
      requestBody: json(csdlActionBody(xml, 'removePassword', 'graph.servicePrincipal')),
      responses: { '204': null },
    },
    {
      id: 'servicePrincipal.removeKey',
      method: 'POST',
      path: '/servicePrincipals/{id}/removeKey',
      parameters: [odataId],
      requestBody: json(csdlActionBody(xml, 'removeKey', 'graph.servicePrincipal')),
      responses: { '204': null },
    },
    {
      id: 'riskyUser.confirmCompromised',
      method: 'POST',
      path: '/identityProtection/riskyUsers/confirmCompromised',
      parameters: [],
      requestBody: json(csdlActionBody(xml, 'confirmCompromised', 'Collection(graph.riskyUser)')),
      responses: { '204': null },
    },
    {
      id: 'riskyUser.dismiss',
      method: 'POST',
      path: '/identityProtection/riskyUsers/dismiss',
      parameters: [],
      requestBody: json(csdlActionBody(xml, 'dismiss', 'Collection(graph.riskyUser)')),
      responses: { '204': null },
    },
  ];
  return { operations: ops, definitions };
}

// ------------------------------------------------------------------ main

function main(): void {
  const [vendor, ...files] = process.argv.slice(2);
  let out: Omit<VendorDescription, 'vendor' | 'source'>;
  switch (vendor) {
    case 'github':
      out = openApiOperations([JSON.parse(readFileSync(files[0]!, 'utf8')) as Json], USED.github!);
      break;
    case 'okta':
      out = openApiOperations(
        files.map((f) => parseYaml(readFileSync(f, 'utf8'), { maxAliasCount: -1 }) as Json),
        USED.okta!,
      );
      break;
    case 'google':
      out = discoveryOperations(JSON.parse(readFileSync(files[0]!, 'utf8')) as Json, USED.google!);
      break;
    case 'entra':
      out = graphOperations(readFileSync(files[0]!, 'utf8'));
      break;
    default:
      throw new Error(`unknown vendor ${vendor}`);
  }
  const doc: VendorDescription = { vendor: vendor!, source: 'see SOURCE.md beside this file', ...out };
  writeFileSync(join(OUT(vendor!), 'operations.json'), `${JSON.stringify(doc, null, 1)}\n`);
  console.log(
    `${vendor}: ${out.operations.length} operations, ${Object.keys(out.definitions).length} schemas`,
  );
}

if (import.meta.url === `file://${process.argv[1]}`) main();
