/**
 * Where the running code lives, for files shipped beside it (worker threads,
 * @sigstore/tuf's seeds, the example policies). `import.meta.url` says so in
 * every build but one: the CLI's startup snapshot is a CommonJS bundle whose
 * `import.meta` is empty, and its code was loaded on another machine or path
 * than the one it runs from. There the snapshot's entry sets the bundle entry
 * it was started with (src/cli/snapshot.ts), which sits where the ESM bundle's
 * chunks do.
 */
let bundleUrl: string | undefined;
let startedFrom: 'snapshot' | undefined;

export function setBundleUrl(entryPath: string | undefined): void {
  if (entryPath !== undefined && entryPath !== '') bundleUrl = new URL(entryPath, 'file:///').href;
}

/** `import.meta.url` of the caller, or the bundle's location when it has none. */
export function moduleUrl(metaUrl: string | undefined): string {
  const url = metaUrl ?? bundleUrl;
  if (url === undefined) return new URL(`file://${process.cwd()}/`).href;
  return url;
}

export function setStartedFrom(how: 'snapshot'): void {
  startedFrom = how;
}

/** How this process was started, for `--debug`: from the startup snapshot, the bundle, or the TypeScript sources. */
export function startedAs(metaUrl: string | undefined): 'snapshot' | 'bundle' | 'sources' {
  if (startedFrom !== undefined) return startedFrom;
  return metaUrl?.endsWith('.ts') === true ? 'sources' : 'bundle';
}
