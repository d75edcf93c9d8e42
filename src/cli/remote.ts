/**
 * The CLI's remote mode: an operation call becomes one HTTP request to a Custody
 * server, and the answer becomes exactly what a local call returns: the same
 * output object, or the same CustodyError (code, message, hint, details), so
 * human output and exit codes do not depend on where the use case ran.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { openBlobFile } from '../adapters/blob-fs.ts';
import { encodeRequest, type Operation } from '../app/operations/registry.ts';
import { CustodyError, isErrorCode } from '../core/errors.ts';
import type { IngestProgress } from '../core/ports.ts';
import type { GlobalOptions } from './output.ts';
import { VERSION } from './version.ts';

export interface RemoteTarget {
  url: URL;
  token: string | undefined;
}

// The largest answer is an evidence export: 48 MiB of tar, base64 in JSON.
const RESPONSE_MAX = 80 * 1024 * 1024;
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** `--server`, then CUSTODY_SERVER; undefined means local mode. The token only ever comes from CUSTODY_TOKEN. */
export function remoteTarget(g: GlobalOptions, env: NodeJS.ProcessEnv = process.env): RemoteTarget | undefined {
  const server = g.server ?? (env['CUSTODY_SERVER'] || undefined);
  if (server === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw new CustodyError('USAGE', `"${server}" is not a URL`, { hint: 'e.g. --server https://custody.example.com' });
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new CustodyError('USAGE', `--server must be an http(s) URL, not ${url.protocol}`);
  if (url.username !== '' || url.password !== '') {
    throw new CustodyError('USAGE', '--server must not carry credentials', { hint: 'put the token in CUSTODY_TOKEN' });
  }
  if (url.protocol === 'http:' && !LOOPBACK.has(url.hostname) && env['CUSTODY_ALLOW_INSECURE_HTTP'] !== '1') {
    throw new CustodyError('USAGE', `refusing to send a token to ${url.host} over plain HTTP`, {
      hint: 'use https, or set CUSTODY_ALLOW_INSECURE_HTTP=1 on a network you trust',
    });
  }
  if (g.as !== undefined) {
    throw new CustodyError('USAGE', '--as works in local mode only; against a server you act as the identity of your token', { hint: 'unset --as, or use a token for that identity' });
  }
  return { url, token: env['CUSTODY_TOKEN'] || undefined };
}

export interface RemoteIO {
  /** A local file streamed as the request body. */
  file?: string;
  onProgress?: (p: IngestProgress) => void;
  /** The server's note for humans about this request (Custody-Notice), if any. */
  onNotice?: (text: string) => void;
}

export async function callRemote(target: RemoteTarget, op: Operation, input: Record<string, unknown>, io: RemoteIO = {}): Promise<unknown> {
  const encoded = encodeRequest(op, input);
  const base = target.url.pathname.replace(/\/+$/, '');
  const search = encoded.query.toString();
  const url = new URL(`${base}${encoded.path}${search ? `?${search}` : ''}`, target.url);
  const headers: Record<string, string> = { accept: 'application/json', 'user-agent': `custody-cli/${VERSION}` };
  if (target.token !== undefined) headers['authorization'] = `Bearer ${target.token}`;

  let payload: Buffer | undefined;
  let upload: Awaited<ReturnType<typeof openBlobFile>> | undefined;
  if (op.upload) {
    if (io.file === undefined) throw new CustodyError('USAGE', `${op.id} needs a file to upload`);
    // The same checks as a local add (exists, regular file), so both modes refuse with the same words.
    upload = await openBlobFile(io.file, Number.MAX_SAFE_INTEGER);
    headers['content-type'] = 'application/octet-stream';
    headers['content-length'] = String(upload.size);
  } else if (encoded.body !== undefined) {
    payload = Buffer.from(JSON.stringify(encoded.body));
    headers['content-type'] = 'application/json';
    headers['content-length'] = String(payload.length);
  }

  let res: { status: number; body: Buffer; notice?: string };
  try {
    res = await send(url, encoded.method.toUpperCase(), headers, payload, upload, io.onProgress);
  } finally {
    await upload?.handle.close().catch(() => undefined);
  }
  if (res.notice) io.onNotice?.(res.notice);
  const parsed = parseJson(res.body);
  if (res.status >= 200 && res.status < 300) {
    const out = op.output.safeParse(parsed);
    if (!out.success) throw new CustodyError('SERVER_RESPONSE_INVALID', `the server's answer to ${op.id} does not match its schema`, { hint: 'is the server a compatible Custody version?' });
    return out.data;
  }
  throw errorFrom(res.status, parsed, url);
}

function errorFrom(status: number, body: unknown, url: URL): CustodyError {
  const e = (body as { error?: { code?: unknown; message?: unknown; hint?: unknown; details?: unknown } } | undefined)?.error;
  if (e && typeof e.code === 'string' && isErrorCode(e.code) && typeof e.message === 'string') {
    return new CustodyError(e.code, e.message, {
      ...(typeof e.hint === 'string' ? { hint: e.hint } : {}),
      ...(e.details !== null && typeof e.details === 'object' && !Array.isArray(e.details) ? { details: e.details as Record<string, unknown> } : {}),
    });
  }
  // Not a Custody answer: a proxy, a load balancer, or another service on that port.
  return new CustodyError('SERVER_UNREACHABLE', `${url.origin} answered HTTP ${status} without a Custody error`, { hint: 'check --server / CUSTODY_SERVER' });
}

function parseJson(body: Buffer): unknown {
  if (body.length === 0) return undefined;
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
}

function send(
  url: URL,
  method: string,
  headers: Record<string, string>,
  payload: Buffer | undefined,
  upload: { handle: Awaited<ReturnType<typeof openBlobFile>>['handle']; size: number } | undefined,
  onProgress?: (p: IngestProgress) => void,
): Promise<{ status: number; body: Buffer; notice?: string }> {
  return new Promise((resolve, reject) => {
    const fn = url.protocol === 'https:' ? httpsRequest : httpRequest;
    let answered = false;
    const req = fn(url, { method, headers, timeout: 300_000 }, (res: IncomingMessage) => {
      answered = true;
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > RESPONSE_MAX) {
          res.destroy();
          reject(new CustodyError('SERVER_RESPONSE_INVALID', `the server's answer is over ${RESPONSE_MAX} bytes`));
          return;
        }
        chunks.push(c);
      });
      const notice = res.headers['custody-notice'];
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), ...(typeof notice === 'string' ? { notice: notice.slice(0, 512) } : {}) }));
      res.on('error', (e) => reject(unreachable(url, e)));
    });
    req.on('timeout', () => req.destroy(new CustodyError('SERVER_UNREACHABLE', `${url.origin} did not answer in time`)));
    req.on('error', (e) => {
      // The server may answer (413, 401) and close before the upload is sent: keep its answer.
      if (!answered) reject(e instanceof CustodyError ? e : unreachable(url, e));
    });
    if (upload) {
      const stream = upload.handle.createReadStream({ autoClose: false, start: 0 });
      let sent = 0;
      stream.on('data', (c: Buffer | string) => {
        sent += c.length;
        onProgress?.({ bytes: sent, total: upload.size });
      });
      stream.on('error', (e) => req.destroy(e));
      stream.pipe(req);
    } else {
      req.end(payload);
    }
  });
}

function unreachable(url: URL, e: unknown): CustodyError {
  const code = (e as NodeJS.ErrnoException).code;
  return new CustodyError('SERVER_UNREACHABLE', `cannot reach ${url.origin}: ${code ?? (e as Error).message}`, {
    cause: e,
    hint: 'check --server / CUSTODY_SERVER, and that `custody server` is running there',
  });
}
