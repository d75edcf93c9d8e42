/**
 * The structured request log: one JSON object per line. Secrets never reach it:
 * headers are not logged at all, and URLs pass through `redactUrl` first.
 */
export type LogLine = Record<string, unknown>;
export type Logger = (line: LogLine) => void;

export const stderrLogger: Logger = (line) => {
  process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), ...line })}\n`);
};

const SECRET_PARAM = /token|secret|passw|pwd|key|auth|sig|credential|session/i;
const BEARER_LIKE = /cst_[0-9a-f]{16}_[A-Za-z0-9_-]+|eyJ[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/g;

/** A path and query fit to log: user info dropped, secret-looking parameters and tokens replaced. */
export function redactUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw, 'http://x');
  } catch {
    return '[unparseable]';
  }
  const params = [...url.searchParams.entries()].map(([k, v]) => `${encodeURIComponent(k)}=${SECRET_PARAM.test(k) ? '[REDACTED]' : encodeURIComponent(redactText(v))}`);
  return `${redactText(url.pathname)}${params.length ? `?${params.join('&')}` : ''}`;
}

export function redactText(s: string): string {
  return s.replace(BEARER_LIKE, '[REDACTED]').replace(/\/\/[^/@\s]+:[^/@\s]*@/g, '//[REDACTED]@');
}
