import { readFile, stat } from 'node:fs/promises';
import { CustodyError } from '../core/errors.ts';

/** A JSON Web Key Set as RFC 7517 shapes it; the keys are checked by jose when used. */
export interface Jwks {
  keys: Record<string, unknown>[];
}

/** Where an issuer's keys come from. `get` is cheap when cached; `refresh` asks again (a kid was not found). */
export interface JwksSource {
  get(): Promise<Jwks>;
  /** Fetches again unless it did so within the cool-down; true when a new set was loaded. */
  refresh(): Promise<boolean>;
}

const MAX_KEYS = 100;
const REFRESH_COOLDOWN_MS = 30_000;
// A fetched set stays usable this long when the issuer cannot be reached: verifying
// against yesterday's keys beats refusing every CI job while the issuer hiccups.
const MAX_STALE_MS = 24 * 3600_000;

function parseJwks(text: string, from: string): Jwks {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new CustodyError('JWKS_UNAVAILABLE', `${from} is not JSON`, { cause: e });
  }
  const keys = (value as { keys?: unknown } | null)?.keys;
  if (typeof value !== 'object' || value === null || !Array.isArray(keys)) {
    throw new CustodyError('JWKS_UNAVAILABLE', `${from} is not a JSON Web Key Set (no "keys" array)`);
  }
  if (keys.length > MAX_KEYS) throw new CustodyError('JWKS_UNAVAILABLE', `${from} holds more than ${MAX_KEYS} keys`);
  if (!keys.every((k) => typeof k === 'object' && k !== null && !Array.isArray(k))) {
    throw new CustodyError('JWKS_UNAVAILABLE', `${from} has a key that is not an object`);
  }
  return { keys: keys as Record<string, unknown>[] };
}

/** A JWKS file on disk, read with a size limit and read again when it changes. */
export function fileJwks(path: string, maxBytes: number): JwksSource {
  let cached: { set: Jwks; mtimeMs: number } | undefined;
  let lastRefresh = 0;
  const load = async (): Promise<Jwks> => {
    let st;
    try {
      st = await stat(path);
    } catch (e) {
      throw new CustodyError('JWKS_UNAVAILABLE', `cannot read the JWKS file ${path}`, { cause: e });
    }
    if (cached && cached.mtimeMs === st.mtimeMs) return cached.set;
    if (st.size > maxBytes) throw new CustodyError('JWKS_UNAVAILABLE', `${path} is larger than ${maxBytes} bytes`);
    const set = parseJwks(await readFile(path, 'utf8'), path);
    cached = { set, mtimeMs: st.mtimeMs };
    return set;
  };
  return {
    get: load,
    async refresh() {
      const now = Date.now();
      if (now - lastRefresh < REFRESH_COOLDOWN_MS) return false;
      lastRefresh = now;
      const before = cached?.set;
      return (await load()) !== before;
    },
  };
}

export interface UrlJwksOptions {
  maxBytes: number;
  cacheSeconds: number;
  timeoutMs?: number;
  now?: () => number;
}

/**
 * A JWKS fetched over HTTPS: cached for `cacheSeconds`, fetched again at most
 * once per cool-down when a token names an unknown kid (key rotation), never
 * following redirects, and never reading more than `maxBytes`.
 */
export function urlJwks(url: string, options: UrlJwksOptions): JwksSource {
  const now = options.now ?? Date.now;
  let cached: { set: Jwks; at: number } | undefined;
  let inflight: Promise<Jwks> | undefined;
  let lastFetch = 0;

  const fetchOnce = async (): Promise<Jwks> => {
    lastFetch = now();
    let res: Response;
    try {
      res = await fetch(url, { redirect: 'error', signal: AbortSignal.timeout(options.timeoutMs ?? 5000), headers: { accept: 'application/json' } });
    } catch (e) {
      throw new CustodyError('JWKS_UNAVAILABLE', `cannot fetch the JWKS from ${url}: ${(e as Error).message}`, { cause: e });
    }
    if (res.status !== 200) {
      await res.body?.cancel().catch(() => undefined);
      throw new CustodyError('JWKS_UNAVAILABLE', `fetching the JWKS from ${url} returned HTTP ${res.status}`);
    }
    const declared = Number(res.headers.get('content-length') ?? '0');
    if (declared > options.maxBytes) {
      await res.body?.cancel().catch(() => undefined);
      throw new CustodyError('JWKS_UNAVAILABLE', `the JWKS at ${url} is ${declared} bytes, over the ${options.maxBytes}-byte limit`);
    }
    const text = await readLimited(res, options.maxBytes, url);
    const set = parseJwks(text, url);
    cached = { set, at: now() };
    return set;
  };

  const load = (): Promise<Jwks> => {
    inflight ??= fetchOnce().finally(() => {
      inflight = undefined;
    });
    return inflight;
  };

  return {
    async get() {
      if (cached && now() - cached.at < options.cacheSeconds * 1000) return cached.set;
      try {
        return await load();
      } catch (e) {
        if (cached && now() - cached.at < MAX_STALE_MS) return cached.set;
        throw e;
      }
    },
    async refresh() {
      if (now() - lastFetch < REFRESH_COOLDOWN_MS) return false;
      await load();
      return true;
    },
  };
}

async function readLimited(res: Response, maxBytes: number, url: string): Promise<string> {
  if (!res.body) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
    size += chunk.length;
    // Throwing out of the loop cancels the body: nothing more is read.
    if (size > maxBytes) {
      throw new CustodyError('JWKS_UNAVAILABLE', `the JWKS at ${url} is over the ${maxBytes}-byte limit`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}
