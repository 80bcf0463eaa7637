import convict from 'convict';
import { FedlhsError, isFedlhsError } from '@fedlhs/core';

export interface ConfigSources {
  /** JSON config file loaded before environment and flags. */
  file?: string | undefined;
  /** Environment variables (defaults to process.env). Tests pass their own object. */
  env?: NodeJS.ProcessEnv;
  /** Command-line flags such as ['--grpc-port', '0']. */
  args?: string[];
}

/**
 * Formats stricter than convict's own: its 'port' and 'nat' use parseInt (so "7443x" passes as
 * 7443) and Boolean treats anything but "false" as true (so "0" or "no" would switch a safety
 * setting on). Ours accept only what they say. Their plain Errors are convict's protocol: it
 * collects them per key, and loadConfig turns them into one CONFIG_INVALID.
 */
convict.addFormats({
  'tcp-port': {
    coerce: (v: unknown) => (typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v),
    validate: (v: unknown) => {
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 65535) throw new Error('must be a port number from 0 to 65535');
    },
  },
  'whole-number': {
    coerce: (v: unknown) => (typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v),
    validate: (v: unknown) => {
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new Error('must be a whole number (0 or more)');
    },
  },
  'strict-boolean': {
    coerce: (v: unknown) => (v === 'true' || v === '1' ? true : v === 'false' || v === '0' ? false : v),
    validate: (v: unknown) => {
      if (typeof v !== 'boolean') throw new Error('must be true or false (or 1 or 0)');
    },
  },
});

/**
 * An invalid configuration: a FedlhsError with code CONFIG_INVALID, whose message is one line
 * naming key, value and what is allowed, and `details.key` the key when there is one.
 * @deprecated Test with `isFedlhsError(err, 'CONFIG_INVALID')`; the subclass remains while
 * callers still use `instanceof ConfigError` (coordinator main.ts).
 */
export class ConfigError extends FedlhsError<'CONFIG_INVALID'> {
  constructor(message: string, options: { cause?: unknown; details?: { key?: string } } = {}) {
    super('CONFIG_INVALID', message, options);
  }
}

/**
 * Loads a convict schema from file, environment and flags (later wins), validates it strictly
 * (unknown keys are errors) and returns the plain properties. Every problem becomes one
 * CONFIG_INVALID (a ConfigError) line of the form "key: what is allowed: value was X". `check`
 * may throw CONFIG_INVALID with its own `details.key`; a plain Error is wrapped the same way.
 */
export function loadConfig<T>(schema: convict.Schema<T>, sources: ConfigSources, check?: (config: T) => void): T {
  // convict's generic Schema type cannot express our `as const` schema literals; the cast is safe
  // because the schema object itself is what convict validates against.
  const config = convict(schema, { env: sources.env ?? process.env, args: sources.args ?? [] });
  if (sources.file !== undefined) {
    try {
      config.loadFile(sources.file);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // A parser's message may quote the file's text, and config files hold secrets: never echo it.
      const why = code === 'ENOENT' ? 'does not exist' : code !== undefined ? `cannot be read (${code})` : 'is not valid JSON';
      throw new ConfigError(`config file ${JSON.stringify(sources.file)} ${why}`, { cause: err });
    }
  }
  try {
    config.validate({ allowed: 'strict' });
    const properties = config.getProperties();
    check?.(properties);
    return properties;
  } catch (err) {
    if (isFedlhsError(err, 'CONFIG_INVALID')) throw err instanceof ConfigError ? err : new ConfigError(err.message, { cause: err, details: err.details });
    const lines = (err as Error).message.split('\n').filter((l) => l.trim() !== '');
    const keys: string[] = [];
    const described = lines.map((line) => {
      const key = /^([A-Za-z0-9_.]+): /.exec(line)?.[1];
      if (key !== undefined) keys.push(key);
      if (key === undefined || /values? (was|were)/.test(line)) return line;
      return `${line}: value was ${JSON.stringify(rawValue(schema, key, sources) ?? safeGet(config, key))}`;
    });
    throw new ConfigError(described.join('; '), { cause: err, details: lines.length === 1 && keys.length === 1 ? { key: keys[0] } : undefined });
  }
}

/** The value as given (before coercion), from the flag or environment variable of `key`. */
function rawValue(schema: unknown, key: string, sources: ConfigSources): string | undefined {
  let node = schema as Record<string, unknown> | undefined;
  for (const part of key.split('.')) node = node?.[part] as Record<string, unknown> | undefined;
  if (node?.sensitive === true) return '[sensitive]';
  const env = node?.env;
  const arg = node?.arg;
  const args = sources.args ?? [];
  if (typeof arg === 'string') {
    const i = args.indexOf(`--${arg}`);
    if (i >= 0 && i + 1 < args.length) return args[i + 1];
    const inline = args.find((a) => a.startsWith(`--${arg}=`));
    if (inline !== undefined) return inline.slice(arg.length + 3);
  }
  return typeof env === 'string' ? (sources.env ?? process.env)[env] : undefined;
}

function safeGet<T>(config: convict.Config<T>, key: string): unknown {
  try {
    return config.get(key as never);
  } catch {
    return undefined;
  }
}
