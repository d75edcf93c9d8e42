/**
 * The small surface the SQL repositories need from a driver. Repositories are
 * written once in portable SQL with `?` placeholders; each driver adapts them.
 */
export type SqlValue = string | number | bigint | null | Uint8Array;

export interface RunResult {
  changes: number;
}

export interface SqlExecutor {
  readonly dialect: 'sqlite' | 'postgres';
  all<T = Record<string, unknown>>(sql: string, params?: readonly SqlValue[]): Promise<T[]>;
  get<T = Record<string, unknown>>(sql: string, params?: readonly SqlValue[]): Promise<T | undefined>;
  run(sql: string, params?: readonly SqlValue[]): Promise<RunResult>;
  /**
   * How many rollbacks (of a transaction or of a savepoint) the store has made
   * on this connection. Only a store that offers it gets per-connection caches
   * of committed state (./cache.ts), which are dropped whenever it moves.
   */
  readonly rollbacks?: () => number;
}

/** Rewrites `?` placeholders to `$1, $2, …` for PostgreSQL; string literals in our SQL never contain `?`. */
export function toDollarParams(sql: string): string {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}

/** `?, ?, …`: one placeholder per value, for `IN (…)` and `VALUES (…)` lists. */
export function placeholders(values: { length: number }): string {
  return Array.from({ length: values.length }, () => '?').join(', ');
}

/** Integers come back as number from SQLite and as string (BIGINT) from pg. */
export function toInt(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'string') return Number.parseInt(v, 10);
  return Number.NaN;
}

export function toBytes(v: unknown): Uint8Array {
  if (v instanceof Uint8Array) return v;
  return new Uint8Array(0);
}
