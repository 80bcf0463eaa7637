import pino, { type Logger } from 'pino';

export type { Logger } from 'pino';

export interface LoggerOptions {
  /** Program name, put on every line as `app`. */
  app: string;
  level: string;
  /** 'auto': pretty when stdout is a TTY. */
  pretty: 'auto' | 'true' | 'false';
}

/**
 * Paths redacted from every log line. Secrets and anything that could identify a patient
 * must never be logged; these catch the fields where they could appear by mistake.
 */
export const REDACT_PATHS = [
  'token',
  'joinToken',
  'credential',
  'nodeCredential',
  'authorization',
  '*.token',
  '*.joinToken',
  '*.credential',
  '*.nodeCredential',
  '*.authorization',
  'patientId',
  '*.patientId',
  'record',
  '*.record',
];

/** The one root logger of a process. Components take `logger.child({ component })`. */
export function createLogger(options: LoggerOptions): Logger {
  const pretty = options.pretty === 'true' || (options.pretty === 'auto' && process.stdout.isTTY === true);
  return pino({
    name: options.app,
    level: options.level,
    base: { app: options.app, pid: process.pid },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
    ...(pretty ? { transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,app' } } } : {}),
  });
}
