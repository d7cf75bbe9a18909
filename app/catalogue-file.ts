import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { issuesFromZod, TourniquetError } from '../platform/errors.ts';
import { Catalogue, type CatalogueEntry } from '../schemas/catalogue.ts';

/** Reads an identity catalogue (YAML or JSON list of entries), reporting every bad field. */
export function loadCatalogueFile(path: string): CatalogueEntry[] {
  let doc: unknown;
  try {
    doc = parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new TourniquetError('CONFIG_INVALID', `cannot read catalogue ${path}: ${(err as Error).message}`, {
      status: 400,
      cause: err,
    });
  }
  const list = Array.isArray(doc) ? doc : (doc as { identities?: unknown } | null)?.identities;
  const result = Catalogue.safeParse(list);
  if (!result.success) {
    const issues = issuesFromZod(result.error.issues);
    throw new TourniquetError(
      'CONFIG_INVALID',
      `catalogue ${path} is invalid:\n${issues.map((i) => `  - ${i.path}: ${i.message}`).join('\n')}`,
      { status: 400, details: { issues } },
    );
  }
  return result.data;
}
