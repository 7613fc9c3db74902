import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** What the proxy does to one request instead of (or while) forwarding it. */
export type Fault =
  /** Answer with this status (and an optional Retry-After) without forwarding. */
  | { kind: 'status'; status: number; retryAfter?: string }
  /** Close the connection without answering. */
  | { kind: 'drop' }
  /** Forward, but close the connection after this many bytes of the response body. */
  | { kind: 'truncate'; afterBytes: number };

export interface ProxiedRequest {
  method: string;
  path: string;
  /** The fault applied, if any. */
  fault?: Fault['kind'];
}

export interface FaultProxy {
  /** `127.0.0.1:PORT`: give this to the client instead of the registry's host. */
  host: string;
  /** Every request seen, in order. */
  readonly seen: ProxiedRequest[];
  /** Queues faults, applied one per request to the next requests whose method and path match. */
  inject(faults: Fault[], match?: (method: string, path: string) => boolean): void;
  /** Faults still queued. */
  pending(): number;
  stop(): Promise<void>;
}

/**
 * Starts an HTTP proxy on 127.0.0.1 in front of `target` (`127.0.0.1:PORT`) that injects faults:
 * error statuses, dropped connections and truncated bodies. The Host header is passed through, so the
 * registry's Location headers point back at the proxy.
 */
export async function startFaultProxy(target: string): Promise<FaultProxy> {
  const [targetHost, targetPort] = target.split(':') as [string, string];
  const queue: { fault: Fault; match: (method: string, path: string) => boolean }[] = [];
  const seen: ProxiedRequest[] = [];

  const forward = (req: IncomingMessage, res: ServerResponse, truncateAfter: number | undefined): void => {
    const upstream = request(
      { host: targetHost, port: Number(targetPort), method: req.method, path: req.url, headers: req.headers },
      (upstreamRes) => {
        res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.headers);
        if (truncateAfter === undefined) {
          upstreamRes.pipe(res);
          return;
        }
        let sent = 0;
        upstreamRes.on('data', (chunk: Buffer) => {
          const room = truncateAfter - sent;
          if (room > 0) res.write(chunk.subarray(0, room));
          sent += chunk.length;
          if (sent >= truncateAfter) {
            upstreamRes.destroy();
            res.socket?.destroy();
          }
        });
        upstreamRes.on('end', () => res.end());
      },
    );
    upstream.on('error', () => res.socket?.destroy());
    req.pipe(upstream);
  };

  const server = createServer((req, res) => {
    const method = req.method ?? 'GET';
    const path = req.url ?? '/';
    const index = queue.findIndex((entry) => entry.match(method, path));
    const fault = index === -1 ? undefined : queue.splice(index, 1)[0]!.fault;
    seen.push({ method, path, ...(fault !== undefined && { fault: fault.kind }) });
    if (fault === undefined) return forward(req, res, undefined);
    switch (fault.kind) {
      case 'status': {
        req.resume();
        const headers: Record<string, string> = { 'content-type': 'application/json' };
        if (fault.retryAfter !== undefined) headers['retry-after'] = fault.retryAfter;
        const code = fault.status === 429 ? 'TOOMANYREQUESTS' : 'UNKNOWN';
        res.writeHead(fault.status, headers);
        res.end(JSON.stringify({ errors: [{ code, message: `injected ${fault.status}` }] }));
        return;
      }
      case 'drop':
        req.socket.destroy();
        return;
      case 'truncate':
        return forward(req, res, fault.afterBytes);
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    host: `127.0.0.1:${port}`,
    seen,
    inject(faults, match = () => true) {
      for (const fault of faults) queue.push({ fault, match });
    },
    pending: () => queue.length,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
