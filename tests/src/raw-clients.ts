import { request as httpRequest } from 'node:http';
import { connect as http2Connect, type ClientHttp2Session } from 'node:http2';
import { connect as netConnect } from 'node:net';

/** An HTTP answer read off the wire: status, lower-case headers, body text. */
export interface RawHttpAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * Sends `bytes` (a whole HTTP/1.1 request, however malformed) on a fresh connection and reads the
 * answer until the server closes it or `timeoutMs` passes; for requests an HTTP client library
 * would refuse to send (bad %-encoding, broken headers, odd request targets).
 */
export function rawHttp(port: number, bytes: string | Buffer, timeoutMs = 10_000): Promise<RawHttpAnswer> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => socket.destroy(new Error(`no complete answer within ${timeoutMs} ms`)), timeoutMs);
    const finish = (): void => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString('latin1');
      const split = text.indexOf('\r\n\r\n');
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(text);
      if (m === null || split < 0) {
        reject(new Error(`no HTTP answer (${chunks.length === 0 ? 'connection closed' : JSON.stringify(text.slice(0, 200))})`));
        return;
      }
      const headers: Record<string, string> = {};
      for (const line of text.slice(0, split).split('\r\n').slice(1)) {
        const colon = line.indexOf(':');
        headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      let body: Buffer = Buffer.from(text.slice(split + 4), 'latin1');
      if (headers['transfer-encoding'] === 'chunked') body = dechunk(body);
      resolve({ status: Number(m[1]), headers, body: body.toString('utf8') });
    };
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('end', finish);
    // A server that answers early (413, 415) may reset while the request is still being sent.
    socket.on('error', (err) => (chunks.length > 0 ? finish() : (clearTimeout(timer), reject(err))));
    socket.write(bytes);
  });
}

function dechunk(body: Buffer): Buffer {
  const out: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = body.indexOf('\r\n', at);
    if (eol < 0) break;
    const size = parseInt(body.subarray(at, eol).toString('latin1'), 16);
    if (!(size > 0)) break;
    out.push(body.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
  return Buffer.concat(out);
}

/** An HTTP request from a chosen local address (e.g. 127.0.0.2: another source on Linux loopback). */
export function httpFrom(localAddress: string, port: number, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<RawHttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, method, path, headers, localAddress, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const h: Record<string, string> = {};
        for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') h[k] = v;
        resolve({ status: res.statusCode ?? 0, headers: h, body: Buffer.concat(chunks).toString('utf8') });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** A gRPC answer's status, message and `fedlhs-error-code` trailer. */
export interface RawGrpcStatus {
  code: number;
  message: string;
  errorCode: string | undefined;
}

/**
 * A gRPC client at the HTTP/2 level bound to a chosen local address (grpc-js cannot choose one):
 * for calls that must come from another source address than the test's other clients.
 */
export class RawGrpcClient {
  private readonly session: ClientHttp2Session;

  constructor(port: number, localAddress: string) {
    this.session = http2Connect(`http://127.0.0.1:${port}`, { createConnection: () => netConnect({ host: '127.0.0.1', port, localAddress }) });
    this.session.on('error', () => undefined);
  }

  /** A unary call with an already encoded request message; resolves with the final status. */
  unary(method: string, message: Uint8Array, authorization: string | undefined): Promise<RawGrpcStatus> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string> = { ':method': 'POST', ':path': method, 'content-type': 'application/grpc', te: 'trailers' };
      if (authorization !== undefined) headers.authorization = authorization;
      const stream = this.session.request(headers);
      let final: Record<string, unknown> | undefined;
      const statusOf = (h: Record<string, unknown>): void => {
        if (h['grpc-status'] !== undefined) final = h;
      };
      stream.on('response', statusOf);
      stream.on('trailers', statusOf);
      stream.on('data', () => undefined);
      stream.on('error', reject);
      stream.on('close', () => {
        if (final === undefined) {
          reject(new Error(`${method}: the stream closed without a grpc-status`));
          return;
        }
        const text = typeof final['grpc-message'] === 'string' ? decodeURIComponent(final['grpc-message']) : '';
        resolve({ code: Number(final['grpc-status']), message: text, errorCode: typeof final['fedlhs-error-code'] === 'string' ? final['fedlhs-error-code'] : undefined });
      });
      const frame = Buffer.alloc(5 + message.length);
      frame.writeUInt32BE(message.length, 1);
      frame.set(message, 5);
      stream.end(frame);
    });
  }

  close(): void {
    this.session.close();
  }
}
