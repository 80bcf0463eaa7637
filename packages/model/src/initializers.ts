/**
 * The weight initialisers a study's topology may name in a layer's `*_initializer` entries, and
 * how the study seed reaches them. Only allow-listed TF.js initialiser classes with plain
 * numeric (or enumerated string) settings are accepted, so a manifest can say, for example,
 * "PyTorch's nn.Linear default" (VarianceScaling fan_in uniform with scale 1/3 for the kernel,
 * RandomUniform ±1/√fan_in for the bias) while holding data only.
 */
import { FedlhsError } from '@fedlhs/core';

/** How one setting of an initialiser is checked: a predicate and the phrase for "must be …". */
interface SettingRule {
  readonly test: (value: unknown) => boolean;
  readonly expected: string;
}

const isNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const finite: SettingRule = { test: isNumber, expected: 'a finite number' };
const positive: SettingRule = { test: (v) => isNumber(v) && v > 0, expected: 'a finite number > 0' };
// tfjs reads `minval || -0.05` and `maxval || 0.05`: an explicit 0 would silently become its default.
const nonZero: SettingRule = { test: (v) => isNumber(v) && v !== 0, expected: 'a finite number other than 0 (tfjs reads 0 as "use its default ±0.05")' };
const seed: SettingRule = { test: (v) => Number.isSafeInteger(v) && (v as number) >= 0, expected: 'an integer ≥ 0 (the study seed replaces it)' };
const oneOf = (...values: string[]): SettingRule => ({ test: (v) => typeof v === 'string' && values.includes(v), expected: `one of ${values.join(', ')}` });

/**
 * Initialiser classes a layer may name, with the settings each accepts. Keras spells the
 * VarianceScaling enumerations in snake case ('fan_in'); tfjs' own spelling is accepted too.
 */
const INITIALIZER_RULES: Readonly<Record<string, Readonly<Record<string, SettingRule>>>> = {
  Zeros: {},
  Ones: {},
  Constant: { value: finite },
  RandomUniform: { minval: nonZero, maxval: nonZero, seed },
  RandomNormal: { mean: finite, stddev: positive, seed },
  TruncatedNormal: { mean: finite, stddev: positive, seed },
  VarianceScaling: {
    scale: positive,
    mode: oneOf('fan_in', 'fan_out', 'fan_avg', 'fanIn', 'fanOut', 'fanAvg'),
    distribution: oneOf('uniform', 'normal', 'truncated_normal', 'truncatedNormal'),
    seed,
  },
  GlorotUniform: { seed },
  GlorotNormal: { seed },
  HeUniform: { seed },
  HeNormal: { seed },
  LeCunUniform: { seed },
  LeCunNormal: { seed },
};

/** The initialiser class names a topology may use. */
export const ALLOWED_INITIALIZERS: readonly string[] = Object.freeze(Object.keys(INITIALIZER_RULES));

/** Settings without which tfjs cannot build the initialiser. */
const REQUIRED: Readonly<Record<string, readonly string[]>> = { Constant: ['value'] };
/** Classes whose draws are random, hence seeded from the study seed. */
const RANDOM = new Set(ALLOWED_INITIALIZERS.filter((c) => 'seed' in INITIALIZER_RULES[c]!));
/** tfjs' default kernel initialiser for the layers that have a kernel. */
const DEFAULT_KERNEL: Readonly<Record<string, string>> = { Dense: 'GlorotUniform', Conv1D: 'GlorotUniform' };

interface Initializer {
  class_name: string;
  config: Record<string, unknown>;
}
type Layer = { class_name: string; config: Record<string, unknown> };

function fail(path: string, message: string): never {
  throw new FedlhsError('MANIFEST_INVALID', `${path}: ${message}`, { details: { path } });
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Checks one `*_initializer` value (absent and null mean tfjs' default). */
function validateInitializer(value: unknown, path: string): void {
  if (value === undefined || value === null) return;
  if (!isRecord(value)) fail(path, `must be an object {class_name, config}, got ${JSON.stringify(value)}`);
  for (const key of Object.keys(value)) {
    if (key !== 'class_name' && key !== 'config') fail(`${path}.${key}`, 'is not allowed; an initialiser has class_name and config only');
  }
  const className = value['class_name'];
  const rules = typeof className === 'string' && Object.hasOwn(INITIALIZER_RULES, className) ? INITIALIZER_RULES[className] : undefined;
  if (rules === undefined) fail(`${path}.class_name`, `initialiser ${JSON.stringify(className)} is not allowed; allowed: ${ALLOWED_INITIALIZERS.join(', ')}`);
  const config = value['config'] ?? {};
  if (!isRecord(config)) fail(`${path}.config`, 'must be an object');
  for (const [key, v] of Object.entries(config)) {
    const rule = Object.hasOwn(rules, key) ? rules[key] : undefined;
    if (rule === undefined) {
      const accepted = Object.keys(rules);
      fail(`${path}.config.${key}`, `is not a setting of ${className as string}; ${accepted.length === 0 ? 'it takes none' : `accepted: ${accepted.join(', ')}`}`);
    }
    if (!rule.test(v)) fail(`${path}.config.${key}`, `must be ${rule.expected}, got ${JSON.stringify(v)}`);
  }
  for (const key of REQUIRED[className as string] ?? []) {
    if (!(key in config)) fail(`${path}.config.${key}`, `is required for ${className as string}`);
  }
  if (className === 'RandomUniform') {
    const min = (config['minval'] as number | undefined) ?? -0.05;
    const max = (config['maxval'] as number | undefined) ?? 0.05;
    if (!(min < max)) fail(`${path}.config`, `minval must be below maxval, got [${min}, ${max}] (tfjs' defaults: -0.05, 0.05)`);
  }
}

/**
 * Checks every `*_initializer` entry of every layer against the allow-list: a known class,
 * only its own settings, each a finite number in range (or an allowed enumeration), required
 * settings present. Throws INVALID_MANIFEST naming the JSON path of the first offending value.
 * The topology's overall structure is core's `validateTopology`'s to check.
 */
export function validateInitializers(topology: Record<string, unknown>, path = 'model.topology'): void {
  const config = topology['config'];
  const layers = isRecord(config) && Array.isArray(config['layers']) ? (config['layers'] as unknown[]) : [];
  layers.forEach((layer, i) => {
    if (!isRecord(layer) || !isRecord(layer['config'])) return;
    for (const [key, value] of Object.entries(layer['config'])) {
      const lp = `${path}.config.layers[${i}].config.${key}`;
      if (/[a-z0-9]Initializer$/.test(key)) fail(lp, `write it ${key.replace(/Initializer$/, '_initializer').replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase()}, the Keras JSON spelling`);
      if (key.endsWith('_initializer')) validateInitializer(value, lp);
    }
  });
}

/** FNV-1a of a string: a stable 32-bit seed, never 0. */
function hashSeed(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h === 0 ? 1 : h;
}

/** Whether tfjs draws this initialiser's values from a (truncated) normal distribution. */
function drawsNormal(init: Initializer): boolean {
  if (['RandomNormal', 'TruncatedNormal', 'GlorotNormal', 'HeNormal', 'LeCunNormal'].includes(init.class_name)) return true;
  return init.class_name === 'VarianceScaling' && init.config['distribution'] !== 'uniform';
}

/**
 * Seeds, in place, every random initialiser of a validated topology's layers from the study
 * seed, so every process that builds the study's model draws the same initial weights; a kernel
 * the topology leaves to tfjs becomes its default (GlorotUniform) with a seed. A kernel's seed
 * is `seed·1009 + layer index` (as before initialisers could be chosen, so existing studies keep
 * their initial weights); every other entry's seed is a hash of the seed, the layer index and
 * the entry's name, so a layer's kernel and bias never share a random stream. tfjs ignores a
 * seed of 0 for normal draws, so such a kernel takes the hashed seed too.
 */
export function seedInitializers(layers: Layer[], studySeed: number): void {
  layers.forEach((layer, i) => {
    const keys = Object.keys(layer.config).filter((k) => k.endsWith('_initializer'));
    const defaultKernel = DEFAULT_KERNEL[layer.class_name];
    if (defaultKernel !== undefined && layer.config['kernel_initializer'] == null) {
      layer.config['kernel_initializer'] = { class_name: defaultKernel, config: {} };
      if (!keys.includes('kernel_initializer')) keys.push('kernel_initializer');
    }
    for (const key of keys) {
      const value = layer.config[key];
      if (!isRecord(value) || typeof value['class_name'] !== 'string' || !RANDOM.has(value['class_name'])) continue;
      const init: Initializer = { class_name: value['class_name'], config: isRecord(value['config']) ? { ...value['config'] } : {} };
      const legacy = studySeed * 1009 + i;
      const hashed = hashSeed(`${studySeed}/${i}/${key}`);
      init.config['seed'] = key === 'kernel_initializer' && defaultKernel !== undefined && !(legacy === 0 && drawsNormal(init)) ? legacy : hashed;
      layer.config[key] = init;
    }
  });
}
