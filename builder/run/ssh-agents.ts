/**
 * `--ssh` agents for `RUN --mount=type=ssh`: each id names an SSH agent socket of the host, and a
 * step reaches it through a socket of its own that relays every connection, so the step gets the
 * mode and owner its mount asks for while the agent's own socket is left as it is.
 */
import { chmod, chown, lstat } from 'node:fs/promises';
import { connect, createServer, type Socket } from 'node:net';
import path from 'node:path';
import { TsbuildError } from '../../layers/errors.js';

/**
 * Reads `--ssh` values (`ID` for the agent at `$SSH_AUTH_SOCK`, or `ID=SOCKET`) into agent socket
 * paths by id, checking now that each is a socket. Private key files are not supported.
 */
export async function loadSshAgents(values: readonly string[], env: NodeJS.ProcessEnv): Promise<Map<string, string>> {
  const agents = new Map<string, string>();
  for (const value of values) {
    const eq = value.indexOf('=');
    const id = eq < 0 ? value : value.slice(0, eq);
    const socket = eq < 0 ? env.SSH_AUTH_SOCK : value.slice(eq + 1);
    if (!/^[\w.-]+$/.test(id)) throw new TsbuildError('BAD_SSH', `invalid --ssh ${value}: the id must be a plain name`);
    if (agents.has(id)) throw new TsbuildError('BAD_SSH', `--ssh ${id} given twice`);
    if (!socket) throw new TsbuildError('BAD_SSH', `--ssh ${value}: SSH_AUTH_SOCK is not set; give the agent socket as ${id}=SOCKET`);
    if (socket.includes(',')) throw new TsbuildError('BAD_SSH', `--ssh ${value}: only an agent socket is supported, not key files`);
    const stats = await lstat(socket).catch(() => undefined);
    if (!stats?.isSocket()) throw new TsbuildError('BAD_SSH', `--ssh ${value}: ${socket} is not an SSH agent socket`);
    agents.set(id, path.resolve(socket));
  }
  return agents;
}

/** Relays connections to the agent at `agentSocket` from a new socket at `socketPath`, with this mode and owner; returns how to stop. */
export async function relayAgent(agentSocket: string, socketPath: string, owner: { mode: number; uid: number; gid: number }): Promise<() => Promise<void>> {
  const open = new Set<Socket>();
  const server = createServer((client) => {
    const agent = connect(agentSocket);
    for (const end of [client, agent]) {
      open.add(end);
      end.on('close', () => open.delete(end));
      // Either side failing or closing ends the pair.
      end.on('error', () => {
        client.destroy();
        agent.destroy();
      });
    }
    client.pipe(agent).pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error) => reject(new TsbuildError('SSH_AGENT', `cannot listen on ${socketPath}: ${error.message}`, { cause: error })));
    server.listen(socketPath, resolve);
  });
  await chmod(socketPath, owner.mode);
  await chown(socketPath, owner.uid, owner.gid);
  return () =>
    new Promise<void>((resolve) => {
      for (const end of open) end.destroy();
      server.close(() => resolve());
    });
}
