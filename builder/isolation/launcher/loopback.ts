/** Brings up `lo` of the launcher's new network namespace (it starts down). */
import { close, ioctl, socket } from './syscalls.js';

const AF_INET = 2;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0o2000000;
const SIOCGIFFLAGS = 0x8913;
const SIOCSIFFLAGS = 0x8914;
const IFF_UP = 0x1;

export function bringUpLoopback(): void {
  const fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  try {
    // struct ifreq: the interface name (16 bytes), then the flags (a short) in a 24-byte union
    const request = Buffer.alloc(40);
    request.write('lo', 0, 'latin1');
    ioctl(fd, SIOCGIFFLAGS, request);
    request.writeInt16LE(request.readInt16LE(16) | IFF_UP, 16);
    ioctl(fd, SIOCSIFFLAGS, request);
  } finally {
    close(fd);
  }
}
