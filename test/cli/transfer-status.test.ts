import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TransferStatus } from '../../cli/transfer-status.js';
import type { TransferPhase } from '../../registry-client/index.js';

const digest = `sha256:${'ab'.repeat(32)}`;
const event = (phase: TransferPhase, bytes: number) =>
  ({ kind: 'transfer', direction: 'pull', repository: 'example.test/app', digest, phase, bytes, total: 4 * 1024 * 1024 }) as const;

test('a terminal shows each moving blob with bytes and rate, redrawn in place, then a finished line', () => {
  let clock = 0;
  let screen = '';
  const status = new TransferStatus({ write: (raw) => (screen += raw) }, () => clock);
  status.update(event('start', 0));
  clock = 1000;
  status.update(event('progress', 2 * 1024 * 1024));
  assert.match(screen, /\r\x1b\[2Kpull abababababab 2\.0 MiB\/4\.0 MiB 2\.0 MiB\/s$/);
  status.print('#1 DONE 0.1s');
  assert.match(screen, /\r\x1b\[2K#1 DONE 0\.1s\npull abababababab 2\.0 MiB\/4\.0 MiB 2\.0 MiB\/s$/);
  clock = 2000;
  status.update(event('done', 4 * 1024 * 1024));
  assert.match(screen, /\r\x1b\[2Kpull example\.test\/app sha256:abababababab done 4\.0 MiB at 2\.0 MiB\/s\n$/);
});
