/**
 * Diagnostics about configuration: where (file, line) and what. Every config error the
 * daemon reports goes through here so the wording is the same for `gatewayc`,
 * `gatewayctl check` and the tests.
 */

export interface Diag {
  /** The file the diagnostic is about; '' when it concerns no file (e.g. none was given). */
  file: string;
  line?: number;
  severity: 'error' | 'warning';
  message: string;
}

/** `file:line: message`, `file: message` without a line, just the message without a file. */
export function formatDiag(d: Diag): string {
  if (d.file === '') return d.message;
  return d.line === undefined ? `${d.file}: ${d.message}` : `${d.file}:${d.line}: ${d.message}`;
}

/** A configuration problem the daemon must not start with (exit status 78, EX_CONFIG). */
export class ConfigError extends Error {
  readonly diag: Diag;

  constructor(where: { file: string; line?: number; message: string }) {
    const diag: Diag = { file: where.file, severity: 'error', message: where.message };
    if (where.line !== undefined) diag.line = where.line;
    super(formatDiag(diag));
    this.name = 'ConfigError';
    this.diag = diag;
  }
}

/**
 * The reason part of a failed file operation, without the path node puts in its
 * messages ("ENOENT: no such file or directory, open '/x'" → "no such file or
 * directory"), because our messages name the path themselves.
 */
export function errnoReason(err: unknown): string {
  if (err instanceof Error) {
    const m = /^[A-Z0-9_]+: (.*?)(?:, \w+ '.*')?$/s.exec(err.message);
    if (m && m[1] !== '') return m[1];
    const code = (err as NodeJS.ErrnoException).code;
    return code ?? err.message;
  }
  return String(err);
}
