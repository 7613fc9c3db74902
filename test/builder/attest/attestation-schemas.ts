/** Validators for what tsbuild attaches: in-toto Statement v0.1, SLSA Provenance v0.2 and SPDX 2.3 JSON. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import AjvModule from 'ajv';
import Ajv2019Module from 'ajv/dist/2019.js';
import addFormatsModule from 'ajv-formats';
import { repoRoot } from '../../support/repo-root.js';

// CommonJS packages: the class or function is the `default` member of module.exports.
const Ajv = AjvModule.default;
const Ajv2019 = Ajv2019Module.default;
const addFormats = addFormatsModule.default;

const fixtures = path.join(repoRoot(), 'test', 'fixtures');
const load = (file: string): Record<string, unknown> => JSON.parse(readFileSync(path.join(fixtures, file), 'utf8')) as Record<string, unknown>;

const draft7 = new Ajv({ allErrors: true, strict: false });
addFormats(draft7);
const statementSchema = draft7.compile(load('attest/schemas/in-toto-statement-v0.1.json'));
const slsaSchema = draft7.compile(load('attest/schemas/slsa-provenance-v0.2.json'));
const draft2019 = new Ajv2019({ allErrors: true, strict: false });
addFormats(draft2019);
const spdxSchema = draft2019.compile(load('spdx/spdx-schema-2.3.json'));

function check(name: string, validate: typeof statementSchema, value: unknown): void {
  const ok = validate(value);
  assert.ok(ok, `${name}: ${draft7.errorsText(validate.errors, { separator: '\n' })}`);
}

export function assertInTotoStatement(value: unknown): void {
  check('in-toto Statement v0.1', statementSchema, value);
}

export function assertSlsaProvenance(value: unknown): void {
  check('SLSA Provenance v0.2', slsaSchema, value);
}

/** The SPDX 2.3 schema, plus the rules of the spec's text that the schema leaves out. */
export function assertSpdxDocument(value: unknown): void {
  check('SPDX 2.3', spdxSchema, value);
  const doc = value as { spdxVersion: string; dataLicense: string; SPDXID: string; documentNamespace: string; creationInfo: { created: string }; packages: Array<{ SPDXID: string }>; relationships: Array<{ spdxElementId: string; relatedSpdxElement: string }> };
  assert.equal(doc.spdxVersion, 'SPDX-2.3');
  assert.equal(doc.dataLicense, 'CC0-1.0');
  assert.equal(doc.SPDXID, 'SPDXRef-DOCUMENT');
  assert.match(doc.documentNamespace, /^[a-z][a-z0-9+.-]*:[^#]+$/, 'documentNamespace is a URI without a fragment');
  assert.match(doc.creationInfo.created, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/, 'created is YYYY-MM-DDThh:mm:ssZ');
  const ids = doc.packages.map((p) => p.SPDXID);
  assert.equal(new Set(ids).size, ids.length, 'SPDXIDs are unique');
  for (const id of ids) assert.match(id, /^SPDXRef-[A-Za-z0-9.-]+$/);
  const known = new Set(['SPDXRef-DOCUMENT', ...ids]);
  for (const r of doc.relationships) assert.ok(known.has(r.spdxElementId) && known.has(r.relatedSpdxElement), `relationship ${r.spdxElementId} -> ${r.relatedSpdxElement} names elements of the document`);
}
