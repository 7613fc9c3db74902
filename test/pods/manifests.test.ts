/**
 * The Kubernetes manifests of examples/kubernetes, checked without a cluster: each document
 * against a JSON schema of the batch/v1 Job and v1 ConfigMap fields the examples use (unknown
 * fields are errors, as `kubectl --validate=strict` reports them), then against what tsbuild needs
 * from the pod: the settings of its mode, the credentials where DOCKER_CONFIG points, the cache
 * repository, and volume mounts that name volumes.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import AjvModule from 'ajv';
import { parseAllDocuments } from 'yaml';
import { repoRoot } from '../support/repo-root.js';

const Ajv = AjvModule.default;

const strict = (properties: Record<string, unknown>, required: string[] = []): Record<string, unknown> => ({ type: 'object', properties, required, additionalProperties: false });
const str = { type: 'string', minLength: 1 };
const strings = { type: 'array', items: str };
const quantity = { anyOf: [str, { type: 'number' }] };

const volumeMount = strict({ name: str, mountPath: { type: 'string', pattern: '^/' }, readOnly: { type: 'boolean' }, subPath: str }, ['name', 'mountPath']);
const securityContext = strict({
  runAsUser: { type: 'integer', minimum: 0 },
  runAsGroup: { type: 'integer', minimum: 0 },
  runAsNonRoot: { type: 'boolean' },
  allowPrivilegeEscalation: { type: 'boolean' },
  privileged: { type: 'boolean' },
  procMount: { enum: ['Default', 'Unmasked'] },
  seccompProfile: strict({ type: { enum: ['RuntimeDefault', 'Unconfined', 'Localhost'] }, localhostProfile: str }, ['type']),
  capabilities: strict({ add: strings, drop: strings }),
});
const container = strict({
  name: str, image: str, command: strings, args: strings,
  env: { type: 'array', items: strict({ name: str, value: { type: 'string' } }, ['name']) },
  securityContext,
  resources: strict({ requests: strict({ cpu: quantity, memory: quantity }), limits: strict({ cpu: quantity, memory: quantity }) }),
  volumeMounts: { type: 'array', items: volumeMount },
}, ['name', 'image']);
const keyToPath = { type: 'array', items: strict({ key: str, path: str, mode: { type: 'integer' } }, ['key', 'path']) };
const volume = strict({
  name: str,
  emptyDir: strict({ medium: { type: 'string' }, sizeLimit: quantity }),
  secret: strict({ secretName: str, items: keyToPath, defaultMode: { type: 'integer' } }, ['secretName']),
  configMap: strict({ name: str, items: keyToPath, defaultMode: { type: 'integer' } }, ['name']),
}, ['name']);
const metadata = strict({ name: { type: 'string', pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$' }, namespace: str, labels: { type: 'object' } }, ['name']);

const jobSchema = strict({
  apiVersion: { const: 'batch/v1' },
  kind: { const: 'Job' },
  metadata,
  spec: strict({
    backoffLimit: { type: 'integer', minimum: 0 },
    ttlSecondsAfterFinished: { type: 'integer', minimum: 0 },
    activeDeadlineSeconds: { type: 'integer', minimum: 1 },
    template: strict({
      metadata: { type: 'object' },
      spec: strict({
        restartPolicy: { enum: ['Never', 'OnFailure'] },
        automountServiceAccountToken: { type: 'boolean' },
        serviceAccountName: str,
        hostUsers: { type: 'boolean' },
        initContainers: { type: 'array', items: container },
        containers: { type: 'array', items: container, minItems: 1 },
        volumes: { type: 'array', items: volume },
      }, ['restartPolicy', 'containers']),
    }, ['spec']),
  }, ['template']),
}, ['apiVersion', 'kind', 'metadata', 'spec']);

const configMapSchema = strict({
  apiVersion: { const: 'v1' },
  kind: { const: 'ConfigMap' },
  metadata,
  data: { type: 'object', additionalProperties: { type: 'string' } },
}, ['apiVersion', 'kind', 'metadata']);

interface Container {
  name: string;
  image: string;
  args?: string[];
  securityContext?: { runAsUser?: number; procMount?: string; seccompProfile?: { type: string } };
  volumeMounts?: { name: string; mountPath: string }[];
}
interface PodSpec {
  hostUsers?: boolean;
  initContainers?: Container[];
  containers: Container[];
  volumes?: { name: string; secret?: { secretName: string; items?: { key: string; path: string }[] }; configMap?: { name: string } }[];
}
type Manifest = { kind: 'Job'; spec: { template: { spec: PodSpec } } } | { kind: 'ConfigMap'; metadata: { name: string }; data?: Record<string, string> };

const ajv = new Ajv({ allErrors: true, strict: true });
const validators = { Job: ajv.compile(jobSchema), ConfigMap: ajv.compile(configMapSchema) };

async function manifests(file: string): Promise<Manifest[]> {
  const text = await readFile(path.join(repoRoot(), 'examples/kubernetes', file), 'utf8');
  return parseAllDocuments(text).map((document) => {
    assert.deepEqual(document.errors, [], `${file} is YAML`);
    const value = document.toJS() as { kind?: string };
    const validate = validators[value.kind as keyof typeof validators];
    assert.ok(validate, `${file}: unexpected kind ${value.kind}`);
    assert.ok(validate(value), `${file}: ${ajv.errorsText(validate.errors)}`);
    return value as Manifest;
  });
}

function theJob(found: Manifest[]): PodSpec {
  const jobs = found.filter((m): m is Extract<Manifest, { kind: 'Job' }> => m.kind === 'Job');
  assert.equal(jobs.length, 1);
  return jobs[0]!.spec.template.spec;
}

/** What every builder Job must give tsbuild: a push with the registry cache, and the Secret where the image's DOCKER_CONFIG points. */
async function checkBuilder(pod: PodSpec): Promise<Container> {
  const volumes = new Set(pod.volumes?.map((v) => v.name));
  for (const c of [...(pod.initContainers ?? []), ...pod.containers]) {
    for (const mount of c.volumeMounts ?? []) assert.ok(volumes.has(mount.name), `${c.name} mounts the unknown volume ${mount.name}`);
  }
  const builder = pod.containers.find((c) => c.name === 'tsbuild');
  assert.ok(builder);
  const args = builder.args ?? [];
  assert.ok(args.includes('--push'));
  assert.ok(args.some((arg) => /^--cache-repo=\S+\/\S+$/.test(arg)));
  const dockerfile = await readFile(path.join(repoRoot(), 'examples/kubernetes/Dockerfile'), 'utf8');
  const dockerConfig = /DOCKER_CONFIG=(\S+)/.exec(dockerfile)?.[1];
  assert.equal(dockerConfig, '/tsbuild/docker');
  const credentials = builder.volumeMounts?.find((m) => m.mountPath === dockerConfig);
  assert.ok(credentials, 'the credentials are mounted at DOCKER_CONFIG');
  const secret = pod.volumes?.find((v) => v.name === credentials.name)?.secret;
  assert.deepEqual(secret?.items, [{ key: '.dockerconfigjson', path: 'config.json' }]);
  return builder;
}

test('job-root.yaml: a valid Job that builds a Git checkout as root without privileges', async () => {
  const pod = theJob(await manifests('job-root.yaml'));
  const builder = await checkBuilder(pod);
  assert.equal(builder.securityContext?.runAsUser, 0);
  assert.equal(builder.securityContext?.seccompProfile?.type, 'RuntimeDefault');
  assert.notEqual(pod.hostUsers, false);
  const clone = pod.initContainers?.find((c) => c.args?.[0] === 'clone');
  assert.ok(clone, 'an init container clones the context');
  const workspace = clone.volumeMounts?.find((m) => m.mountPath === '/workspace');
  assert.ok(workspace && builder.volumeMounts?.some((m) => m.name === workspace.name && m.mountPath === '/workspace'));
  assert.equal(builder.args?.at(-1), '/workspace');
});

test('job-userns.yaml: a valid Job that builds a ConfigMap context as uid 1000 in a user namespace', async () => {
  const found = await manifests('job-userns.yaml');
  const pod = theJob(found);
  const builder = await checkBuilder(pod);
  assert.equal(pod.hostUsers, false);
  assert.equal(builder.securityContext?.runAsUser, 1000);
  assert.equal(builder.securityContext?.procMount, 'Unmasked');
  assert.equal(builder.securityContext?.seccompProfile?.type, 'Unconfined');
  const contextMount = builder.volumeMounts?.find((m) => m.mountPath === builder.args?.at(-1));
  const configMapName = pod.volumes?.find((v) => v.name === contextMount?.name)?.configMap?.name;
  const configMap = found.find((m): m is Extract<Manifest, { kind: 'ConfigMap' }> => m.kind === 'ConfigMap' && m.metadata.name === configMapName);
  assert.match(configMap?.data?.Dockerfile ?? '', /^FROM \S+\nRUN /);
});

test('the schema check rejects a misspelt field and a mount of a missing volume', async () => {
  const job = (await manifests('job-root.yaml'))[0] as Extract<Manifest, { kind: 'Job' }>;
  const misspelt = structuredClone(job) as unknown as { spec: { template: { spec: { containers: Record<string, unknown>[] } } } };
  misspelt.spec.template.spec.containers[0]!.volumeMount = [];
  assert.equal(validators.Job(misspelt), false);
  const dangling = structuredClone(job);
  dangling.spec.template.spec.volumes = [];
  await assert.rejects(checkBuilder(dangling.spec.template.spec), /mounts the unknown volume/);
});
