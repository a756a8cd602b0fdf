import net from 'node:net';

/**
 * A TCP proxy on 127.0.0.1 in front of a real server, for fault tests:
 * - `up`: forwards both ways;
 * - `reset`: existing connections are destroyed, new ones are accepted and destroyed at once;
 * - `blackhole`: existing and new connections stay open but nothing passes, either way.
 * Switching back to `up` destroys the connections held by the blackhole (the way a partition
 * that lasted ends them) and forwards new ones again.
 */
export type ProxyMode = 'up' | 'reset' | 'blackhole';

export interface TcpProxy {
  readonly port: number;
  readonly mode: ProxyMode;
  /** Connections accepted so far, in any mode. */
  readonly accepted: number;
  /** Chunks the clients sent that the blackhole swallowed (about one per request written). */
  readonly swallowed: number;
  setMode(mode: ProxyMode): void;
  close(): Promise<void>;
}

interface Pair {
  client: net.Socket;
  upstream: net.Socket | null;
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  let mode: ProxyMode = 'up';
  let accepted = 0;
  let swallowed = 0;
  const pairs = new Set<Pair>();

  // The service's side is reset (RST), as a network failure would; PostgreSQL's side is closed.
  const drop = (pair: Pair) => {
    if (!pairs.delete(pair)) return;
    if (!pair.client.destroyed) pair.client.resetAndDestroy();
    pair.upstream?.destroy();
  };

  const blackhole = (pair: Pair) => {
    pair.client.unpipe();
    pair.upstream?.unpipe();
    // Read and discard, so that nothing reaches the other side and no buffer fills up.
    pair.client.removeAllListeners('data');
    pair.upstream?.removeAllListeners('data');
    pair.client.on('data', () => {
      swallowed += 1;
    });
    pair.upstream?.on('data', () => undefined);
    // unpipe left both paused: a 'data' listener alone would not read.
    pair.client.resume();
    pair.upstream?.resume();
  };

  const server = net.createServer((client) => {
    accepted += 1;
    const pair: Pair = { client, upstream: null };
    pairs.add(pair);
    client.on('error', () => drop(pair));
    client.on('close', () => drop(pair));
    if (mode === 'reset') return drop(pair);
    if (mode === 'blackhole') return blackhole(pair);
    const upstream = net.connect(target.port, target.host);
    pair.upstream = upstream;
    upstream.on('error', () => drop(pair));
    upstream.on('close', () => drop(pair));
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;

  return {
    port,
    get mode() {
      return mode;
    },
    get accepted() {
      return accepted;
    },
    get swallowed() {
      return swallowed;
    },
    setMode(next) {
      if (next === mode) return;
      const previous = mode;
      mode = next;
      if (next === 'reset' || (next === 'up' && previous === 'blackhole')) {
        for (const pair of [...pairs]) drop(pair);
      } else if (next === 'blackhole') {
        for (const pair of pairs) blackhole(pair);
      }
    },
    close: async () => {
      for (const pair of [...pairs]) drop(pair);
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
