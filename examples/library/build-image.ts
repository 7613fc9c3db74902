/**
 * Builds a small Dockerfile into an OCI layout with the tsbuild library.
 *
 *     npm run build && node dist/examples/library/build-image.js OUT-DIR
 *
 * No RUN step, so it needs neither root nor a container runtime.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { build, TsbuildError, type BuildEvent } from 'tsbuild';

const dest = process.argv[2];
if (dest === undefined) {
  process.stderr.write('usage: build-image.js OUT-DIR\n');
  process.exit(2);
}

const context = await mkdtemp(path.join(os.tmpdir(), 'tsbuild-example-'));
try {
  await writeFile(path.join(context, 'hello.txt'), 'hello from the tsbuild library\n');
  await writeFile(path.join(context, 'Dockerfile'), 'FROM scratch\nCOPY hello.txt /hello.txt\nENV GREETING=hello\nCMD ["/hello.txt"]\n');

  const result = await build({
    source: { context },
    outputs: { targets: [{ type: 'oci', dest, tar: false }], tags: ['example:1'] },
    image: { sourceDateEpoch: 0 },
    // The environment the library may read: here, where its caches go.
    env: process.env,
    progress: (event: BuildEvent) => {
      if (event.kind === 'step-start') process.stderr.write(`${event.name}\n`);
    },
  });
  process.stdout.write(`${result.descriptor.digest}\n`);
} catch (error) {
  // Every failure the library reports is a TsbuildError with a code from a closed list.
  if (!(error instanceof TsbuildError)) throw error;
  process.stderr.write(`error: ${error.message} (${error.code})\n`);
  process.exitCode = 1;
} finally {
  await rm(context, { recursive: true, force: true });
}
