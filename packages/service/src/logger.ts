import { openSync } from 'node:fs';
import pino, { type Logger } from 'pino';
import { FedlhsError } from '@fedlhs/core';

export type { Logger } from 'pino';

export interface LoggerOptions {
  /** Program name, put on every line as `app`. */
  app: string;
  level: string;
  /** 'auto': pretty when stdout is a TTY. */
  pretty: 'auto' | 'true' | 'false';
  /**
   * Most bytes of log lines waiting for the destination (default 8 MiB). A line that would
   * overflow it is dropped and counted, so a slow stdout can never grow memory without bound.
   */
  maxBufferBytes?: number;
  /** Least time between two `log.dropped` summaries (default 10 s). */
  dropSummaryMs?: number;
  /** Where the JSON lines go: a file descriptor or a file path (default: stdout). */
  destination?: number | string;
}

/** The default bound of the log buffer (design core-redesign §4.4). */
export const DEFAULT_LOG_BUFFER_BYTES = 8 * 1024 * 1024;
const DEFAULT_DROP_SUMMARY_MS = 10_000;

/** Log lines dropped so far because the destination could not keep up. */
export interface LogDrops {
  /** Lines dropped since the logger was made (`fedlhs_log_lines_dropped_total`). */
  readonly dropped: number;
  /** Bytes waiting for the destination now (at most maxBufferBytes). */
  readonly bufferedBytes: number;
}

const DROPS = Symbol('fedlhs.logDrops');

/**
 * The drop counts of a logger made by createLogger (or of one of its children); undefined for
 * any other logger, and for the pretty (TTY) pipeline, which is not bounded here.
 */
export function logDrops(logger: Logger): LogDrops | undefined {
  return (logger as Logger & { [DROPS]?: LogDrops })[DROPS];
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

/**
 * The one root logger of a process. Components take `logger.child({ component })`.
 *
 * JSON lines go through an asynchronous sonic-boom destination bounded by `maxBufferBytes`
 * (sonic-boom's `maxLength`, which drops a line that would overflow the buffer and emits
 * `drop`). Dropped lines are counted (logDrops) and summarised by a warn line with
 * `event: 'log.dropped'`, at most once per `dropSummaryMs` while lines are being dropped.
 * pino flushes the buffer synchronously on exit.
 */
export function createLogger(options: LoggerOptions): Logger {
  const pretty = options.pretty === 'true' || (options.pretty === 'auto' && process.stdout.isTTY === true);
  const settings = {
    name: options.app,
    level: options.level,
    base: { app: options.app, pid: process.pid },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  if (pretty) {
    // For people at a terminal: pino-pretty in a worker thread.
    return pino({ ...settings, transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,app' } } });
  }
  const maxLength = options.maxBufferBytes ?? DEFAULT_LOG_BUFFER_BYTES;
  if (!(Number.isInteger(maxLength) && maxLength >= 4096)) {
    throw new FedlhsError('CONFIG_INVALID', `log.maxBufferBytes must be an integer of at least 4096, got ${maxLength}`, { details: { key: 'log.maxBufferBytes' } });
  }
  // A path is opened here, synchronously, so the destination is ready at once (an exit right
  // after the first line still flushes it).
  const dest = typeof options.destination === 'string' ? openSync(options.destination, 'a') : (options.destination ?? 1);
  const destination = pino.destination({ dest, sync: false, maxLength });
  const logger = pino(settings, destination);

  const summaryMs = options.dropSummaryMs ?? DEFAULT_DROP_SUMMARY_MS;
  let dropped = 0;
  let unreported = 0;
  let summarising = false;
  let summaryDropped = false;
  let timer: NodeJS.Timeout | undefined;
  const summarise = (): void => {
    timer = undefined;
    summarising = true;
    summaryDropped = false;
    try {
      logger.warn({ event: 'log.dropped', dropped: unreported, droppedTotal: dropped, maxBufferBytes: maxLength }, `${unreported} log line(s) dropped: the log destination is too slow`);
    } finally {
      summarising = false;
    }
    // The summary itself did not fit: try again later, without counting it.
    if (summaryDropped) schedule();
    else unreported = 0;
  };
  const schedule = (): void => {
    if (timer !== undefined) return;
    timer = setTimeout(summarise, summaryMs);
    timer.unref();
  };
  destination.on('drop', () => {
    if (summarising) {
      summaryDropped = true;
      return;
    }
    dropped++;
    unreported++;
    schedule();
  });
  const drops: LogDrops = {
    get dropped() {
      return dropped;
    },
    get bufferedBytes() {
      return (destination as unknown as { _len: number })._len;
    },
  };
  // On the root; children inherit it (pino children are created from their parent).
  Object.defineProperty(logger, DROPS, { value: drops });
  return logger;
}

/**
 * Copies every process warning (`process.emitWarning`, e.g. the audit chain's
 * FEDLHS_AUDIT_CHAIN_GAP) into `logger` as warn `process.warning`, so it reaches the operator's
 * log pipeline and not only stderr (Node still prints it there too). For long-running processes;
 * returns the function that removes the listener.
 */
export function logProcessWarnings(logger: Logger): () => void {
  const onWarning = (warning: Error & { code?: string }): void => {
    logger.warn({ event: 'process.warning', code: warning.code, warning: warning.name }, warning.message);
  };
  process.on('warning', onWarning);
  return () => void process.off('warning', onWarning);
}
