import { LineCounter, parseDocument, isMap, isNode, isScalar, type Document } from 'yaml';
import type { ZodType } from 'zod';
import { CustodyError, type ErrorCode } from './errors.ts';

export interface SourceProblem {
  file: string;
  line: number;
  col: number;
  message: string;
  path: string;
}

export interface YamlLimits {
  maxBytes: number;
  maxAliases: number;
  maxDepth: number;
}

export const DEFAULT_YAML_LIMITS: YamlLimits = { maxBytes: 1024 * 1024, maxAliases: 100, maxDepth: 64 };

export interface ParsedYaml<T> {
  value: T;
  doc: Document;
  lines: LineCounter;
}

/**
 * Parses untrusted YAML into a schema-checked value, or throws `code` with every
 * problem located as file:line:col. Bombs (alias expansion), deep nesting and
 * oversized input are refused before they can cost memory.
 */
export function parseYaml<T>(text: string, schema: ZodType<T>, file: string, code: ErrorCode, limits: YamlLimits = DEFAULT_YAML_LIMITS): ParsedYaml<T> {
  const problems = yamlProblems(text, schema, file, limits);
  if ('problems' in problems) {
    const first = problems.problems[0];
    throw new CustodyError(code, problems.problems.map(formatProblem).join('\n'), {
      details: { problems: problems.problems },
      ...(first ? { hint: `fix ${first.file}:${first.line}:${first.col} first` } : {}),
    });
  }
  return problems;
}

export function yamlProblems<T>(text: string, schema: ZodType<T>, file: string, limits: YamlLimits = DEFAULT_YAML_LIMITS): ParsedYaml<T> | { problems: SourceProblem[] } {
  const raw = parseYamlValue(text, file, limits);
  if ('problems' in raw) return raw;
  return checkYamlValue(raw, schema, file);
}

/** Parses with the limits but no schema: the first half of `yamlProblems`, for documents whose schema depends on their content. */
export function parseYamlValue(text: string, file: string, limits: YamlLimits = DEFAULT_YAML_LIMITS): ParsedYaml<unknown> | { problems: SourceProblem[] } {
  if (Buffer.byteLength(text, 'utf8') > limits.maxBytes) {
    return { problems: [{ file, line: 1, col: 1, path: '', message: `file is larger than ${limits.maxBytes} bytes` }] };
  }
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true, strict: true });
  const at = (offset: number) => {
    const p = lines.linePos(offset);
    return { line: p.line, col: p.col };
  };
  if (doc.errors.length > 0) {
    return { problems: doc.errors.map((e) => ({ file, ...at(e.pos[0]), path: '', message: e.message.split('\n')[0] ?? e.message })) };
  }
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: limits.maxAliases });
  } catch (e) {
    return { problems: [{ file, line: 1, col: 1, path: '', message: `refused: ${(e as Error).message}` }] };
  }
  const depth = depthOf(value, limits.maxDepth + 1);
  if (depth > limits.maxDepth) {
    return { problems: [{ file, line: 1, col: 1, path: '', message: `nesting deeper than ${limits.maxDepth} levels` }] };
  }
  return { value, doc, lines };
}

/** Checks a parsed value (or the part of it at `base`) against a schema, locating every problem as file:line:col. */
export function checkYamlValue<T>(parsed: ParsedYaml<unknown>, schema: ZodType<T>, file: string, base: (string | number)[] = [], value: unknown = parsed.value): ParsedYaml<T> | { problems: SourceProblem[] } {
  const { doc, lines } = parsed;
  const result = schema.safeParse(value ?? {});
  if (!result.success) {
    return {
      problems: result.error.issues.flatMap((issue) => {
        const at = [...base, ...(issue.path as (string | number)[])];
        // Name each unknown key at its own line, rather than the object around it.
        const targets = issue.code === 'unrecognized_keys' ? issue.keys.map((k) => ({ path: [...at, k], message: `unknown field "${k}"` })) : [{ path: at, message: issue.message }];
        return targets.map((t) => {
          const pos = t.path.length > at.length ? locateKey(doc, at, String(t.path.at(-1))) : locate(doc, t.path);
          const lc = pos === undefined ? { line: 1, col: 1 } : lines.linePos(pos);
          const path = t.path.map(String).join('.');
          return { file, line: lc.line, col: lc.col, path, message: `${path ? `${path}: ` : ''}${t.message}` };
        });
      }),
    };
  }
  return { value: result.data, doc, lines };
}

/** Where the node at `path` starts (its nearest existing ancestor when it is absent). */
export function positionOf(parsed: Pick<ParsedYaml<unknown>, 'doc' | 'lines'>, path: (string | number)[]): { line: number; col: number } {
  const offset = locate(parsed.doc, path);
  if (offset === undefined) return { line: 1, col: 1 };
  const p = parsed.lines.linePos(offset);
  return { line: p.line, col: p.col };
}

export function formatProblem(p: SourceProblem): string {
  return `${p.file}:${p.line}:${p.col}: ${p.message}`;
}

/** Where the key naming the node at `path` starts (for "this gate", rather than its body). */
export function keyPositionOf(parsed: Pick<ParsedYaml<unknown>, 'doc' | 'lines'>, path: (string | number)[]): { line: number; col: number } {
  const last = path.at(-1);
  const offset = typeof last === 'string' ? locateKey(parsed.doc, path.slice(0, -1), last) : locate(parsed.doc, path);
  if (offset === undefined) return { line: 1, col: 1 };
  const p = parsed.lines.linePos(offset);
  return { line: p.line, col: p.col };
}

/** Offset of the deepest node that exists along `path` (unknown keys point at their parent). */
function locate(doc: Document, path: (string | number)[]): number | undefined {
  for (let n = path.length; n >= 0; n--) {
    const node: unknown = n === 0 ? doc.contents : doc.getIn(path.slice(0, n), true);
    if (isNode(node) && node.range) return node.range[0];
  }
  return undefined;
}

function locateKey(doc: Document, path: (string | number)[], key: string): number | undefined {
  const parent: unknown = path.length === 0 ? doc.contents : doc.getIn(path, true);
  if (isMap(parent)) {
    for (const item of parent.items) {
      if (isScalar(item.key) && String(item.key.value) === key && item.key.range) return item.key.range[0];
    }
  }
  return locate(doc, path);
}

function depthOf(v: unknown, cap: number, d = 0): number {
  if (d >= cap || v === null || typeof v !== 'object') return d;
  let max = d;
  for (const child of Object.values(v as Record<string, unknown>)) {
    max = Math.max(max, depthOf(child, cap, d + 1));
    if (max >= cap) break;
  }
  return max;
}
