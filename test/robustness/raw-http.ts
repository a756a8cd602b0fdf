import net from 'node:net';

/**
 * A raw HTTP/1.1 client over a TCP socket, for requests that fetch and node:http refuse to send:
 * broken framing, control characters in headers, duplicate or contradictory headers, any method.
 */

export type HeaderValue = string | Buffer;

export interface RawRequest {
  method?: string;
  target?: string;
  version?: string;
  /** Sent as given, in order (duplicates included); values may be raw bytes. */
  headers?: [string, HeaderValue][];
  body?: string | Buffer;
  /** Adds a Content-Length that matches the body (the default); false leaves it to `headers`. */
  contentLength?: boolean;
}

/** Serialises a request byte for byte: header strings are written as latin1 (one byte each). */
export function rawRequest(request: RawRequest): Buffer {
  const body = typeof request.body === 'string' ? Buffer.from(request.body, 'utf8') : (request.body ?? Buffer.alloc(0));
  const headers = [...(request.headers ?? [])];
  if (request.contentLength ?? true) headers.push(['Content-Length', String(body.length)]);
  const parts: Buffer[] = [
    Buffer.from(
      `${request.method ?? 'POST'} ${request.target ?? '/graphql'} ${request.version ?? 'HTTP/1.1'}\r\n`,
      'latin1',
    ),
  ];
  for (const [name, value] of headers) {
    parts.push(Buffer.from(`${name}: `, 'latin1'), typeof value === 'string' ? Buffer.from(value, 'latin1') : value);
    parts.push(Buffer.from('\r\n', 'latin1'));
  }
  parts.push(Buffer.from('\r\n', 'latin1'), body);
  return Buffer.concat(parts);
}

export interface RawExchange {
  /** Every status line that came back (several for pipelined requests, 100 Continue first...). */
  statuses: number[];
  /** How the exchange ended: the server closed, went quiet after answering, reset, or never answered. */
  ending: 'closed' | 'answered' | 'reset' | 'timeout';
  /** The start of what came back, for reports. */
  head: string;
  /** Everything that came back, as latin1. */
  text: string;
}

export interface SendOptions {
  /** Half-closes after writing: the server then sees the end of input (for incomplete requests). */
  halfClose?: boolean;
  /** Resets the connection this many ms after writing, without waiting for an answer. */
  abortAfterMs?: number;
  /** How long to wait for the server to answer or close. */
  timeoutMs?: number;
  /** Waits for the server to close, rather than ending when it goes quiet after an answer. */
  untilClosed?: boolean;
}

const STATUS_LINE = /(?:^|\r\n)HTTP\/1\.[01] (\d{3}) /g;

/** The status of every response in what a server sent back. */
export const statusesOf = (text: string): number[] => [...text.matchAll(STATUS_LINE)].map((match) => Number(match[1]));
/** After an answer, this long without more bytes ends the exchange (a kept-alive connection). */
const QUIET_MS = 250;

export function sendRaw(port: number, bytes: Buffer, options: SendOptions = {}): Promise<RawExchange> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    const chunks: Buffer[] = [];
    let settled = false;
    let quiet: NodeJS.Timeout | undefined;
    let reset = false;
    const finish = (ending: RawExchange['ending']) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(quiet);
      socket.destroy();
      const text = Buffer.concat(chunks).toString('latin1');
      resolve({
        statuses: statusesOf(text),
        ending: reset && ending === 'closed' ? 'reset' : ending,
        head: text.slice(0, 300),
        text,
      });
    };
    const timer = setTimeout(() => finish('timeout'), options.timeoutMs ?? 15_000);
    socket.on('connect', () => {
      socket.write(bytes);
      if (options.abortAfterMs !== undefined) {
        setTimeout(() => {
          socket.resetAndDestroy();
          finish('closed');
        }, options.abortAfterMs);
      } else if (options.halfClose) {
        socket.end();
      }
    });
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      clearTimeout(quiet);
      if (!options.untilClosed) quiet = setTimeout(() => finish('answered'), QUIET_MS);
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ECONNRESET' || error.code === 'EPIPE') reset = true;
    });
    socket.on('close', () => finish('closed'));
  });
}
