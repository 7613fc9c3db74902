/** Linux's encoding of a device number (`st_rdev`), as glibc's major()/minor() decode it. */

export function deviceMajor(rdev: bigint | number): number {
  const r = BigInt(rdev);
  return Number(((r >> 8n) & 0xfffn) | ((r >> 32n) & ~0xfffn));
}

export function deviceMinor(rdev: bigint | number): number {
  const r = BigInt(rdev);
  return Number((r & 0xffn) | ((r >> 12n) & ~0xffn));
}
