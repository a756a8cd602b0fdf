import http from 'node:http';

export interface HttpResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  text: string;
}

export interface HttpRequestOptions {
  method?: string;
  headers?: Record<string, string | number | string[]>;
  body?: Buffer | string;
  /** Streams the body in 16 KiB writes without a content-length (chunked transfer encoding). */
  chunked?: boolean;
  agent?: http.Agent;
}

/**
 * One request over node:http, so that the method, headers and body can be anything (fetch would
 * refuse or rewrite some). A body is sent with an explicit content-length unless the caller set
 * one or asked for chunks: node frames no body of a GET or DELETE otherwise.
 */
export function httpRequest(url: string, options: HttpRequestOptions = {}): Promise<HttpResponse> {
  const headers = { ...options.headers };
  const hasLength = Object.keys(headers).some((name) => name.toLowerCase() === 'content-length');
  if (options.body !== undefined && !options.chunked && !hasLength) {
    headers['content-length'] = Buffer.byteLength(options.body);
  }
  return new Promise((resolve, reject) => {
    const request = http.request(
      url,
      { method: options.method ?? 'POST', headers, agent: options.agent },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => {
          const body = Buffer.concat(chunks);
          resolve({ status: response.statusCode ?? 0, headers: response.headers, body, text: body.toString() });
        });
        response.on('error', reject);
      },
    );
    request.on('error', reject);
    if (options.body === undefined) return void request.end();
    if (!options.chunked) return void request.end(options.body);
    // Without a content-length: the body limit must hold while the body streams in.
    const body = Buffer.from(options.body);
    const step = 16 * 1024;
    const writeFrom = (offset: number): void => {
      if (offset >= body.length) return void request.end();
      request.write(body.subarray(offset, offset + step), () => writeFrom(offset + step));
    };
    writeFrom(0);
  });
}
