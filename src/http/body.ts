import type { IncomingMessage } from 'node:http';

export class BodyTooLargeError extends Error {}
export class MalformedBodyError extends Error {}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Refuses a body over the limit. The rest of it is read and thrown away rather than left on the
 * socket: closing a socket that still has unread input resets the connection, and the client
 * would see a broken pipe instead of the 413.
 */
function tooLarge(request: IncomingMessage): BodyTooLargeError {
  request.resume();
  return new BodyTooLargeError();
}

/** Reads the request body as strict UTF-8, refusing it as soon as it passes `limitBytes`. */
export async function readBody(request: IncomingMessage, limitBytes: number): Promise<string> {
  const declared = Number(request.headers['content-length']);
  if (Number.isFinite(declared) && declared > limitBytes) throw tooLarge(request);
  const chunks: Buffer[] = [];
  let received = 0;
  // destroyOnReturn: false, so that leaving the loop early does not destroy the socket.
  for await (const chunk of request.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
    received += chunk.length;
    if (received > limitBytes) break;
    chunks.push(chunk);
  }
  // Only once the loop has let go of the stream can it be resumed to discard the rest.
  if (received > limitBytes) throw tooLarge(request);
  try {
    return strictUtf8.decode(Buffer.concat(chunks));
  } catch {
    throw new MalformedBodyError('The request body is not valid UTF-8');
  }
}
