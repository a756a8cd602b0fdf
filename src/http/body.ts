import type { IncomingMessage } from 'node:http';

export class BodyTooLargeError extends Error {}
export class MalformedBodyError extends Error {}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** How much of a refused body is read and thrown away before its connection is closed instead. */
const DISCARD_LIMIT_BYTES = 1024 * 1024;

/** Sockets whose request was answered before its body was read, while the rest is thrown away. */
const discarding = new WeakSet<object>();

/**
 * Whether the request on this socket has been answered and its body is being thrown away: Node
 * may still time the request out, but it must not be answered twice.
 */
export const isDiscardingBody = (socket: object): boolean => discarding.has(socket);

/**
 * Throws away the rest of a body whose request was answered before it was read (a refusal, a
 * body over the limit, `/healthz`, a 404), rather than leave it on the socket: closing a socket
 * that still has unread input resets the connection, and the client would see a broken pipe
 * instead of its answer. A client still sending after DISCARD_LIMIT_BYTES more has its connection
 * closed.
 */
export function discardBody(request: IncomingMessage): void {
  const { socket } = request;
  discarding.add(socket);
  let discarded = 0;
  request.on('data', (chunk: Buffer) => {
    discarded += chunk.length;
    if (discarded > DISCARD_LIMIT_BYTES) socket.destroy();
  });
  request.on('end', () => discarding.delete(socket));
}

/**
 * Reads the request body as strict UTF-8, refusing it as soon as it passes `limitBytes`. Plain
 * stream events rather than an async iterator: this runs for every request, and the iterator's
 * machinery cost more than the rest of reading a small body.
 */
export function readBody(request: IncomingMessage, limitBytes: number): Promise<string> {
  const declared = Number(request.headers['content-length']);
  if (Number.isFinite(declared) && declared > limitBytes) return Promise.reject(new BodyTooLargeError());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    const settle = (outcome: () => void) => {
      request.off('data', onData).off('end', onEnd).off('error', onError).off('close', onClose);
      outcome();
    };
    const onData = (chunk: Buffer) => {
      received += chunk.length;
      if (received > limitBytes) settle(() => reject(new BodyTooLargeError()));
      else chunks.push(chunk);
    };
    const onEnd = () =>
      settle(() => {
        try {
          resolve(strictUtf8.decode(Buffer.concat(chunks)));
        } catch {
          reject(new MalformedBodyError('The request body is not valid UTF-8'));
        }
      });
    const onError = (error: Error) => settle(() => reject(error));
    // Closed before its end: the client went away in the middle of its body.
    const onClose = () => settle(() => reject(new Error('The connection closed before the whole body arrived')));
    request.on('data', onData).on('end', onEnd).on('error', onError).on('close', onClose);
  });
}
