/**
 * Glob patterns for identities, issuers and artifacts: `*` matches any run of
 * characters (slashes included), every other character is literal. Matching
 * is the classic two-pointer wildcard algorithm: at most O(pattern × input)
 * steps, so a hostile pattern or identity cannot make it backtrack
 * exponentially, as a regular expression could.
 */
export interface Pattern {
  readonly source: string;
  test(s: string): boolean;
}

export function compilePattern(source: string): Pattern {
  if (!source.includes('*')) return { source, test: (s) => s === source };
  const p = source.replace(/\*+/g, '*');
  return { source, test: (s) => globMatch(p, s) };
}

export function isPattern(s: string): boolean {
  return s.includes('*');
}

function globMatch(p: string, s: string): boolean {
  let pi = 0;
  let si = 0;
  let star = -1;
  let mark = 0;
  while (si < s.length) {
    if (pi < p.length && p[pi] !== '*' && p[pi] === s[si]) {
      pi++;
      si++;
    } else if (pi < p.length && p[pi] === '*') {
      star = pi++;
      mark = si;
    } else if (star >= 0) {
      pi = star + 1;
      si = ++mark;
    } else {
      return false;
    }
  }
  while (pi < p.length && p[pi] === '*') pi++;
  return pi === p.length;
}
