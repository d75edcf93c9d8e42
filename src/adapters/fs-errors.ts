import { CustodyError } from '../core/errors.ts';

/** Turns a Node file-system error into a coded error that names the file and the problem. */
export function fsError(e: unknown, path: string): CustodyError {
  if (e instanceof CustodyError) return e;
  const code = (e as NodeJS.ErrnoException).code;
  switch (code) {
    case 'ENOENT':
      return new CustodyError('INPUT_NOT_FOUND', `${path}: no such file`, { cause: e });
    case 'EISDIR':
      return new CustodyError('INPUT_INVALID', `${path} is a directory, not a file`, { cause: e });
    case 'EACCES':
    case 'EPERM':
      return new CustodyError('INPUT_UNREADABLE', `${path}: permission denied`, { cause: e });
    case 'ELOOP':
      return new CustodyError('INPUT_INVALID', `${path} is a symbolic link; pass the file it points to`, { cause: e });
    case 'ENOSPC':
      return new CustodyError('STORE_ERROR', `no space left on the device while writing ${path}`, { cause: e });
    default:
      return new CustodyError('INPUT_UNREADABLE', `${path}: ${(e as Error).message}`, { cause: e });
  }
}
