import convict from 'convict';

export interface ConfigSources {
  /** JSON config file loaded before environment and flags. */
  file?: string | undefined;
  /** Environment variables (defaults to process.env). Tests pass their own object. */
  env?: NodeJS.ProcessEnv;
  /** Command-line flags such as ['--grpc-port', '0']. */
  args?: string[];
}

/** Any invalid configuration; the message is one line naming key, value and what is allowed. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/**
 * Loads a convict schema from file, environment and flags (later wins), validates it strictly
 * (unknown keys are errors) and returns the plain properties. Every problem becomes one
 * ConfigError line of the form "key: what is allowed: value was X".
 */
export function loadConfig<T>(schema: convict.Schema<T>, sources: ConfigSources, check?: (config: T) => void): T {
  // convict's generic Schema type cannot express our `as const` schema literals; the cast is safe
  // because the schema object itself is what convict validates against.
  const config = convict(schema, { env: sources.env ?? process.env, args: sources.args ?? [] });
  try {
    if (sources.file !== undefined) config.loadFile(sources.file);
    config.validate({ allowed: 'strict' });
    const properties = config.getProperties();
    check?.(properties);
    return properties;
  } catch (err) {
    const lines = (err as Error).message.split('\n').filter((l) => l.trim() !== '');
    const described = lines.map((line) => {
      if (line.includes('value was')) return line;
      const key = /^([A-Za-z0-9_.]+): /.exec(line)?.[1];
      if (key === undefined) return line;
      return `${line}: value was ${JSON.stringify(rawValue(schema, key, sources) ?? safeGet(config, key))}`;
    });
    throw new ConfigError(described.join('; '), { cause: err });
  }
}

/** The value as given (before coercion), from the flag or environment variable of `key`. */
function rawValue(schema: unknown, key: string, sources: ConfigSources): string | undefined {
  let node = schema as Record<string, unknown> | undefined;
  for (const part of key.split('.')) node = node?.[part] as Record<string, unknown> | undefined;
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
