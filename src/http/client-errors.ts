import http from 'node:http';
import type { Duplex } from 'node:stream';
import { errorBody } from '../errors';

interface ClientErrorAnswer {
  status: number;
  code: string;
  message: string;
}

function answerFor(error: NodeJS.ErrnoException, requestTimeoutMs: number): ClientErrorAnswer {
  switch (error.code) {
    case 'HPE_HEADER_OVERFLOW':
      return { status: 431, code: 'BAD_REQUEST', message: `The request headers are over ${http.maxHeaderSize} bytes` };
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return {
        status: 413,
        code: 'PAYLOAD_TOO_LARGE',
        message: 'The chunk extensions of the request body are too long',
      };
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return {
        status: 408,
        code: 'BAD_REQUEST',
        message: `The request did not arrive in full within ${requestTimeoutMs} ms (REQUEST_TIMEOUT_MS)`,
      };
    default:
      return { status: 400, code: 'BAD_REQUEST', message: 'The request is not valid HTTP/1.1' };
  }
}

/**
 * Answers what node:http refuses before the service sees a request (headers over the size limit,
 * broken framing, a request that arrives too slowly) with the status Node would send, plus the
 * catalogue's JSON error body that every other refusal carries; Node's own answers have no body.
 * As Node does, it writes only when no response has started on the connection (bytes written
 * into a response would corrupt it), and then closes the connection: its framing is lost.
 */
export function answerClientError(
  error: NodeJS.ErrnoException,
  socket: Duplex,
  options: { requestTimeoutMs: number; responseStarted: boolean },
): void {
  if (socket.writable && !options.responseStarted) {
    const { status, code, message } = answerFor(error, options.requestTimeoutMs);
    const body = errorBody(code, message);
    socket.write(
      `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\n` +
        'Content-Type: application/json; charset=utf-8\r\n' +
        `Content-Length: ${Buffer.byteLength(body)}\r\n` +
        'Connection: close\r\n\r\n' +
        body,
    );
  }
  socket.destroy(error);
}
