/**
 * What the CLI's startup snapshot must not keep. The snapshot is the heap as
 * it stands after the modules were evaluated on the build machine; a value
 * that module-level code took from the build's process or moment would be
 * served to every later process as if it were its own: a random nonce reused
 * by every run, the builder's environment, files, host, user, directory or
 * clock.
 *
 * So while the snapshot's modules are evaluated, the sources of such values
 * are watched, and every use is a violation that fails the build
 * (scripts/bundle.ts). Code that needs one of them takes it when it runs
 * (see `ownerId()` in app/promotion.ts), which the watch cannot see and need
 * not: after the build the wrappers step aside and call straight through.
 */
/** Exit code of a snapshot build that found violations (scripts/bundle.ts tells it from other failures). */
export const IMPURE_EXIT = 3;

/** One use: what was read or called, and the first frames of the code that did. */
export interface ImpureUse {
  what: string;
  frames: string[];
}

export interface ImpurityWatch {
  /** Stops watching and returns what was used, each source and caller once. */
  stop(): ImpureUse[];
}

type Fn = (...args: never[]) => unknown;

/**
 * Starts watching: reads of `process.env` and `process.argv`, the random
 * sources of `node:crypto` and Web Crypto (unless `crypto: false`), `Math.random`, the clock
 * (`Date.now`, `new Date()`, `performance.now`), file reads and listings
 * through `node:fs`, and `os.hostname`, `os.userInfo`, `os.homedir`,
 * `os.tmpdir`, `process.cwd`, `process.pid`.
 */
export function watchImpurity(options: { crypto?: boolean } = {}): ImpurityWatch {
  const seen = new Map<string, ImpureUse>();
  let watching = true;
  const note = (what: string): void => {
    if (!watching) return;
    // The first frames past the watch's own wrappers say who asked.
    const frames = (new Error('where').stack ?? '')
      .split('\n')
      .slice(1)
      .map((l) => l.trim().replace(/^at /, ''))
      .filter((l) => !/^(\S+\.)?(note|wrapped|get|has|ownKeys|construct)\b/.test(l) && !l.includes('snapshot-guard'))
      .slice(0, 4);
    const key = `${what} ${frames[0] ?? ''}`;
    if (!seen.has(key)) seen.set(key, { what, frames });
  };
  const restore: (() => void)[] = [];

  const wrap = <T extends object>(owner: T, name: keyof T & string, label: string): void => {
    const original = owner[name] as unknown as Fn;
    if (typeof original !== 'function') return;
    const wrapped = function (this: unknown, ...args: never[]): unknown {
      note(label);
      return Reflect.apply(original, this, args);
    };
    try {
      Object.defineProperty(owner, name, { value: wrapped, configurable: true, writable: true, enumerable: true });
      restore.push(() => Object.defineProperty(owner, name, { value: original, configurable: true, writable: true, enumerable: true }));
    } catch {
      // A frozen property cannot be watched; it is then not the snapshot's concern either.
    }
  };

  // The namespace objects of ESM imports are frozen; the CommonJS module objects behind them are not.
  // Watching node:crypto loads it; a caller that forbids loading it at all (src/cli/snapshot.ts) passes `crypto: false`.
  if (options.crypto !== false) {
    const cryptoModule = process.getBuiltinModule('node:crypto');
    for (const name of ['randomBytes', 'randomFillSync', 'randomFill', 'randomUUID', 'randomInt', 'getRandomValues', 'generateKeyPairSync', 'generateKeySync'] as const) {
      wrap(cryptoModule, name, `crypto.${name}`);
    }
    wrap(cryptoModule.webcrypto, 'getRandomValues', 'crypto.webcrypto.getRandomValues');
  }
  const osModule = process.getBuiltinModule('node:os');
  // Files: what a module read at load (a config, a token, a key) would be kept in the heap for every run.
  const fsModule = process.getBuiltinModule('node:fs');
  for (const name of ['readFileSync', 'openSync', 'readdirSync', 'statSync', 'lstatSync', 'existsSync', 'accessSync', 'readFile', 'open', 'readdir', 'stat', 'lstat', 'access'] as const) {
    wrap(fsModule, name, `fs.${name}`);
  }
  for (const name of ['readFile', 'open', 'readdir', 'stat', 'lstat', 'access'] as const) wrap(fsModule.promises, name, `fs.promises.${name}`);
  wrap(Math, 'random', 'Math.random');
  wrap(Date, 'now', 'Date.now');
  wrap(performance, 'now', 'performance.now');
  for (const name of ['hostname', 'userInfo', 'homedir', 'tmpdir'] as const) wrap(osModule, name, `os.${name}`);
  wrap(process, 'cwd', 'process.cwd');

  const OriginalDate = globalThis.Date;
  globalThis.Date = new Proxy(OriginalDate, {
    construct(target, args: unknown[], newTarget) {
      if (args.length === 0) note('new Date()');
      return Reflect.construct(target, args, newTarget) as object;
    },
  });
  restore.push(() => {
    globalThis.Date = OriginalDate;
  });

  const env = process.env;
  const envProxy = new Proxy(env, {
    get(target, key) {
      if (typeof key === 'string') note(`process.env.${key}`);
      return Reflect.get(target, key) as unknown;
    },
    has(target, key) {
      if (typeof key === 'string') note(`process.env.${key}`);
      return Reflect.has(target, key);
    },
    ownKeys(target) {
      note('process.env (listed)');
      return Reflect.ownKeys(target);
    },
  });
  for (const [name, value] of [['env', envProxy], ['argv', process.argv], ['pid', process.pid]] as const) {
    const descriptor = Object.getOwnPropertyDescriptor(process, name);
    if (!descriptor) continue;
    try {
      Object.defineProperty(process, name, {
        configurable: true,
        enumerable: descriptor.enumerable ?? true,
        get: (): unknown => {
          // The environment's keys are watched one by one, through the proxy.
          if (name !== 'env') note(`process.${name}`);
          return name === 'env' ? value : ((descriptor.value as unknown) ?? (descriptor.get?.call(process) as unknown));
        },
        set: (v: unknown) => {
          descriptor.value = v;
        },
      });
      restore.push(() => Object.defineProperty(process, name, descriptor));
    } catch {
      // Not redefinable on this Node: unwatched.
    }
  }

  return {
    stop(): ImpureUse[] {
      watching = false;
      for (const undo of restore.reverse()) undo();
      return [...seen.values()];
    },
  };
}
