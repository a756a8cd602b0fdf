import type { IncomingMessage } from 'node:http';

export class BodyTooLargeError extends Error {}
export class MalformedBodyError extends Error {}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** Reads the request body as strict UTF-8, refusing it as soon as it passes `limitBytes`. */
export async function readBody(request: IncomingMessage, limitBytes: number): Promise<string> {
  const declared = Number(request.headers['content-length']);
  if (Number.isFinite(declared) && declared > limitBytes) throw new BodyTooLargeError();
  const chunks: Buffer[] = [];
  let received = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    received += chunk.length;
    if (received > limitBytes) throw new BodyTooLargeError();
    chunks.push(chunk);
  }
  try {
    return strictUtf8.decode(Buffer.concat(chunks));
  } catch {
    throw new MalformedBodyError('The request body is not valid UTF-8');
  }
}
