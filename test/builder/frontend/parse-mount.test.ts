import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TsbuildError } from '../../../layers/errors.js';
import { checkMountTargets, mountFrom, parseRunMount, type MountParseContext } from '../../../builder/frontend/parse-mount.js';
import { parseSecretSpec } from '../../../builder/run/secrets.js';

const ctx: MountParseContext = {
  expand: (word) => word.replace(/\$DIR/g, '/expanded'),
  workdir: '/app',
  resolveFrom: (name) => ({ kind: 'stage', index: Number(name) }),
  sshIndex: 0,
};

test('a bind mount is the default: read-only, from the context, source "."', () => {
  assert.deepEqual(parseRunMount('target=/src', ctx), { type: 'bind', target: '/src', source: '.', from: { kind: 'context' }, readwrite: false });
  assert.deepEqual(parseRunMount('type=bind,dst=rel,src=x,from=0,rw', ctx), { type: 'bind', target: '/app/rel', source: 'x', from: { kind: 'stage', index: 0 }, readwrite: true });
  assert.equal((parseRunMount('destination=/d,readwrite=false', ctx) as { readwrite: boolean }).readwrite, false);
});

test('a cache mount defaults its id to the target, shares, and is made 0755 root:root', () => {
  assert.deepEqual(parseRunMount('type=cache,target=$DIR/cache', ctx), {
    type: 'cache', target: '/expanded/cache', id: '/expanded/cache', sharing: 'shared', readonly: false, mode: 0o755, uid: 0, gid: 0,
  });
  assert.deepEqual(parseRunMount('type=cache,target=/c,id=x,sharing=locked,ro,mode=700,uid=5,gid=6', ctx), {
    type: 'cache', target: '/c', id: 'x', sharing: 'locked', readonly: true, mode: 0o700, uid: 5, gid: 6,
  });
});

test('a secret mount defaults its target to /run/secrets/<id>, and its id to the target name', () => {
  assert.deepEqual(parseRunMount('type=secret,id=tok', ctx), { type: 'secret', id: 'tok', target: '/run/secrets/tok', required: false, mode: 0o400, uid: 0, gid: 0 });
  assert.deepEqual(parseRunMount('type=secret,target=/etc/key,required', ctx), { type: 'secret', id: 'key', target: '/etc/key', required: true, mode: 0o400, uid: 0, gid: 0 });
  assert.deepEqual(parseRunMount('type=secret,id=tok,env=TOKEN', ctx), { type: 'secret', id: 'tok', env: 'TOKEN', required: false, mode: 0o400, uid: 0, gid: 0 });
});

test('a quoted field may hold a comma; keys are case-insensitive', () => {
  assert.deepEqual(parseRunMount('TYPE=tmpfs,"target=/a,b"', ctx), { type: 'tmpfs', target: '/a,b' });
});

test('mistakes are refused with one clear line', () => {
  const refused: [string, RegExp][] = [
    ['type=bind', /target is required/],
    ['type=cache,target=/', /cannot mount over \//],
    ['target=/x,ro=maybe', /option "readonly" must be true or false/],
    ['target=/x,ro,rw', /readonly and readwrite contradict each other/],
    ['type=cache,target=/x,uid=-1', /invalid uid "-1"/],
    ['type=secret', /id or target is required/],
    ['type=secret,id=x,env=1BAD', /invalid variable name "1BAD"/],
    ['type=tmpfs,target=/x,ro', /unknown option "readonly" for type=tmpfs/],
    ['target=/x,target=/y', /option "target" given twice/],
    ['"target=/x', /unterminated quote/],
    ['type=cache,target=/x,source=/y', /source needs from for type=cache/],
    ['type=constructor,target=/x', /unknown mount type "constructor"/],
    ['target=/x,toString=1', /unknown option "tostring" for type=bind/],
  ];
  for (const [raw, message] of refused) {
    assert.throws(() => parseRunMount(raw, ctx), (err: Error) => err instanceof TsbuildError && message.test(err.message) && err.message.startsWith(`--mount=${raw}: `), raw);
  }
});

test('the mounts of one step may neither share a target nor nest', () => {
  const at = (...targets: string[]) => targets.map((target) => parseRunMount(`type=tmpfs,target=${target}`, ctx));
  checkMountTargets(at('/a', '/ab', '/b/c'));
  assert.throws(() => checkMountTargets(at('/a', '/b', '/a')), /^TsbuildError: two mounts at \/a$/);
  assert.throws(() => checkMountTargets(at('/src/deps', '/src')), /mount target \/src\/deps is inside the target of another mount, \/src: nested mounts are not supported/);
});

test('the from= name is read without expanding it', () => {
  assert.equal(mountFrom('type=bind,from=$STAGE,target=/x'), '$STAGE');
  assert.equal(mountFrom('target=/x'), undefined);
  assert.equal(mountFrom('type=cache,from=img,target=/x'), 'img', 'a cache mount is seeded from it');
  assert.equal(mountFrom('type=tmpfs,target=/x'), undefined);
});

test('--secret values name a file or a variable', () => {
  assert.deepEqual(parseSecretSpec('id=a,src=/f'), { id: 'a', kind: 'file', path: '/f' });
  assert.deepEqual(parseSecretSpec('id=a,source=/f,type=file'), { id: 'a', kind: 'file', path: '/f' });
  assert.deepEqual(parseSecretSpec('id=a,env=VAR'), { id: 'a', kind: 'env', name: 'VAR' });
  assert.deepEqual(parseSecretSpec('type=env,id=VAR'), { id: 'VAR', kind: 'env', name: 'VAR' });
  assert.throws(() => parseSecretSpec('src=/f'), /invalid --secret src=\/f: id is required/);
  assert.throws(() => parseSecretSpec('id=a,src=/f,env=V'), /src cannot be used with type=env/);
  assert.throws(() => parseSecretSpec('id=a,type=file,src=/f,env=V'), /env cannot be used with type=file/);
  assert.throws(() => parseSecretSpec('id=a,mode=1'), /unknown key "mode"/);
});
