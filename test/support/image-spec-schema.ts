/**
 * Validates OCI image-spec documents against the upstream JSON schemas (draft-04) plus the
 * rules the upstream validator checks outside the schemas.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import AjvDraft04Module, { type ErrorObject, type ValidateFunction } from 'ajv-draft-04';
import addFormatsModule from 'ajv-formats';
import { repoRoot } from './repo-root.js';

// Both packages are CommonJS; their class/function is the `default` member of module.exports.
const Ajv = AjvDraft04Module.default;
const addFormats = addFormatsModule.default;

export type ImageSpecKind = 'manifest' | 'index' | 'config' | 'descriptor' | 'layout';

const schemaFileOf: Record<ImageSpecKind, string> = {
  manifest: 'image-manifest-schema.json',
  index: 'image-index-schema.json',
  config: 'config-schema.json',
  descriptor: 'content-descriptor.json',
  layout: 'image-layout-schema.json',
};

/** Encodings of the digest algorithms the spec registers; other algorithms are not checked. */
const registeredDigestEncodings: Record<string, RegExp> = {
  sha256: /^[a-f0-9]{64}$/,
  sha512: /^[a-f0-9]{128}$/,
};
const digestGrammar = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;
const paddedBase64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const envEntry = /^[^=]+=.*$/;

type JsonObject = Record<string, unknown>;

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function readJson(path: string): unknown {
  return JSON.parse(readFileSync(path, 'utf8'));
}

/**
 * A copy of a schema without `id`s. Some subschemas carry an `id` beside a `$ref` (which draft-04
 * says to ignore) and one equals an alias URL of its own file; every URL a `$ref` resolves to is
 * in the aliases file, so the files are registered under those URLs and the `id`s dropped.
 */
function withoutIds(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(withoutIds);
  if (!isObject(node)) return node;
  const copy: JsonObject = {};
  for (const [key, value] of Object.entries(node)) {
    if (key === 'id' && typeof value === 'string') continue;
    copy[key] = withoutIds(value);
  }
  return copy;
}

let validators: Record<ImageSpecKind, ValidateFunction> | undefined;

function schemaValidators(): Record<ImageSpecKind, ValidateFunction> {
  if (validators) return validators;
  const dir = join(repoRoot(), 'test', 'fixtures', 'image-spec');
  const aliases = readJson(join(dir, 'schema-aliases.json')) as Record<string, string[]>;
  const ajv = new Ajv({ allErrors: true });
  addFormats(ajv);
  // `media` in defs.json is a draft-03 annotation; declare it so strict mode accepts it.
  ajv.addKeyword({ keyword: 'media' });
  for (const [file, urls] of Object.entries(aliases)) {
    const schema = withoutIds(readJson(join(dir, file))) as JsonObject;
    for (const url of urls) ajv.addSchema(schema, url);
  }
  const compile = (kind: ImageSpecKind): ValidateFunction => {
    const url = aliases[schemaFileOf[kind]]?.[0];
    const validate = url === undefined ? undefined : ajv.getSchema(url);
    if (!validate) throw new Error(`no schema registered for ${schemaFileOf[kind]}`);
    return validate;
  };
  validators = {
    manifest: compile('manifest'),
    index: compile('index'),
    config: compile('config'),
    descriptor: compile('descriptor'),
    layout: compile('layout'),
  };
  return validators;
}

function describeSchemaError(error: ErrorObject): string {
  const where = error.instancePath === '' ? '(root)' : error.instancePath;
  const allowed = error.keyword === 'enum' ? ` ${JSON.stringify(error.params)}` : '';
  return `${where}: ${error.message ?? error.keyword}${allowed}`;
}

/** The descriptors a document holds, with their JSON pointers. */
function descriptorsIn(kind: ImageSpecKind, value: JsonObject): Array<[string, JsonObject]> {
  const found: Array<[string, JsonObject]> = [];
  const add = (path: string, candidate: unknown): void => {
    if (isObject(candidate)) found.push([path, candidate]);
  };
  const addAll = (path: string, list: unknown): void => {
    if (Array.isArray(list)) list.forEach((item, i) => add(`${path}/${i}`, item));
  };
  if (kind === 'descriptor') add('', value);
  if (kind === 'manifest') {
    add('/config', value.config);
    addAll('/layers', value.layers);
  }
  if (kind === 'index') addAll('/manifests', value.manifests);
  if (kind === 'manifest' || kind === 'index') add('/subject', value.subject);
  return found;
}

/** Problem with the encoded part of a digest whose algorithm the spec registers. */
function registeredEncodingProblem(digest: string): string | undefined {
  const colon = digest.indexOf(':');
  if (colon < 0) return undefined;
  const algorithm = digest.slice(0, colon);
  const encoding = registeredDigestEncodings[algorithm];
  if (!encoding || encoding.test(digest.slice(colon + 1))) return undefined;
  return `digest ${JSON.stringify(digest)} is not ${algorithm} in lowercase hex of the right length`;
}

/** Checks the upstream validator makes outside the JSON schemas. */
function nonSchemaProblems(kind: ImageSpecKind, value: unknown): string[] {
  if (!isObject(value)) return [];
  const problems: string[] = [];
  for (const [path, descriptor] of descriptorsIn(kind, value)) {
    const where = path === '' ? '(root)' : path;
    if (typeof descriptor.digest === 'string') {
      const problem = registeredEncodingProblem(descriptor.digest);
      if (problem) problems.push(`${where}/digest: ${problem}`);
    }
    if (typeof descriptor.data === 'string' && !paddedBase64.test(descriptor.data)) {
      problems.push(`${where}/data: must be padded base64`);
    }
  }
  if (kind === 'config') {
    const env = isObject(value.config) ? value.config.Env : undefined;
    if (Array.isArray(env)) {
      env.forEach((entry, i) => {
        if (typeof entry === 'string' && !envEntry.test(entry)) {
          problems.push(`/config/Env/${i}: ${JSON.stringify(entry)} must be NAME=value`);
        }
      });
    }
    const diffIds = isObject(value.rootfs) ? value.rootfs.diff_ids : undefined;
    if (Array.isArray(diffIds)) {
      diffIds.forEach((diffId, i) => {
        if (typeof diffId !== 'string') return;
        const problem = digestGrammar.test(diffId)
          ? registeredEncodingProblem(diffId)
          : `${JSON.stringify(diffId)} is not a digest`;
        if (problem) problems.push(`/rootfs/diff_ids/${i}: ${problem}`);
      });
    }
  }
  return problems;
}

/** Everything wrong with `value` as an OCI document of the given kind; empty when valid. */
export function validateImageSpec(kind: ImageSpecKind, value: unknown): string[] {
  const validate = schemaValidators()[kind];
  const schemaProblems = validate(value) ? [] : (validate.errors ?? []).map(describeSchemaError);
  return [...schemaProblems, ...nonSchemaProblems(kind, value)];
}

/** Fails with an AssertionError listing every problem unless `value` is a valid OCI `kind`. */
export function assertValidImageSpec(kind: ImageSpecKind, value: unknown): void {
  const problems = validateImageSpec(kind, value);
  if (problems.length > 0) assert.fail(`invalid OCI ${kind}:\n  ${problems.join('\n  ')}`);
}
