/**
 * Capability sets of a RUN step: the bounding set shrinks to the default container set, a root
 * process keeps exactly that set, any other uid keeps none (its execve gains nothing either).
 */
import { capset, prctl } from './syscalls.js';

/** Capability numbers (linux/capability.h) of the default container set. */
const capabilityNumbers: Readonly<Record<string, number>> = {
  CHOWN: 0, DAC_OVERRIDE: 1, FOWNER: 3, FSETID: 4, KILL: 5, SETGID: 6, SETUID: 7, SETPCAP: 8,
  NET_BIND_SERVICE: 10, NET_RAW: 13, SYS_CHROOT: 18, MKNOD: 27, AUDIT_WRITE: 29, SETFCAP: 31,
};

/** The default set of container runtimes, as a mask (0xa80425fb). */
export const defaultCapabilities: bigint = Object.values(capabilityNumbers).reduce((mask, number) => mask | (1n << BigInt(number)), 0n);

const PR_CAPBSET_DROP = 24;
const PR_CAP_AMBIENT = 47;
const PR_CAP_AMBIENT_CLEAR_ALL = 4;
const LINUX_CAPABILITY_VERSION_3 = 0x20080522;

/** Drops every capability up to `lastCapability` that `keep` lacks from the bounding set (needs CAP_SETPCAP). */
export function limitBoundingSet(keep: bigint, lastCapability: number): void {
  for (let number = 0; number <= lastCapability; number++) {
    if ((keep & (1n << BigInt(number))) === 0n) prctl(PR_CAPBSET_DROP, number);
  }
}

/** Sets effective and permitted to `mask`, inheritable and ambient to nothing. */
export function setCapabilities(mask: bigint): void {
  const header = Buffer.alloc(8);
  header.writeUInt32LE(LINUX_CAPABILITY_VERSION_3, 0);
  // two { effective, permitted, inheritable } triples: capabilities 0-31, then 32-63
  const data = Buffer.alloc(24);
  const low = Number(mask & 0xffffffffn);
  const high = Number(mask >> 32n);
  data.writeUInt32LE(low, 0);
  data.writeUInt32LE(low, 4);
  data.writeUInt32LE(high, 12);
  data.writeUInt32LE(high, 16);
  capset(header, data);
  prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
}
