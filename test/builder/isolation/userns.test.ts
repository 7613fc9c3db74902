import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { currentIdMapping, idMapArgs, idMapped, parseIdMap, parseSubordinateIds } from '../../../builder/isolation/userns.js';

describe('user namespace ids', () => {
  it('reads subordinate ranges by name or uid, in file order, skipping others and malformed lines', () => {
    const text = 'alice:100000:65536\n# comment\nbob:165536:65536\n1001:300000:10\nalice:400000:5\nalice:x:5\nalice:500000:0\n';
    assert.deepEqual(parseSubordinateIds(text, { name: 'alice', id: 1000 }), [{ start: 100000, count: 65536 }, { start: 400000, count: 5 }]);
    assert.deepEqual(parseSubordinateIds(text, { name: 'carol', id: 1001 }), [{ start: 300000, count: 10 }]);
    assert.deepEqual(parseSubordinateIds(text, { name: undefined, id: 1002 }), []);
  });

  it('maps 0 to the own id and the ranges from 1 on', () => {
    assert.deepEqual(idMapArgs(1000, [{ start: 100000, count: 65536 }, { start: 400000, count: 5 }]), ['0', '1000', '1', '1', '100000', '65536', '65537', '400000', '5']);
    assert.deepEqual(idMapArgs(1000, []), ['0', '1000', '1']);
  });

  it('tells the initial namespace from a mapped one', () => {
    assert.deepEqual(parseIdMap('         0          0 4294967295\n'), { kind: 'host' });
    assert.deepEqual(parseIdMap('         0        999          1\n         1     100000      65536\n'), { kind: 'namespace', hostUid: 999, ids: 65537 });
    assert.deepEqual(parseIdMap('         0       1000          1\n'), { kind: 'namespace', hostUid: 1000, ids: 1 });
    const map = '0 999 1\n1 100000 65536\n';
    assert.equal(idMapped(map, 0), true);
    assert.equal(idMapped(map, 65536), true);
    assert.equal(idMapped(map, 65537), false);
    assert.equal(idMapped('0 999 1\n', 5), false);
  });

  it('reads this process mapping from /proc', async () => {
    assert.deepEqual(await currentIdMapping(), parseIdMap(await readFile('/proc/self/uid_map', 'utf8')));
  });
});
