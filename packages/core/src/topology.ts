import { FedlhsError } from './errors.js';

/** Layer classes a study may use. Each is a plain TF.js layer with no user code. */
export const ALLOWED_LAYERS: readonly string[] = [
  'InputLayer',
  'Dense',
  'Dropout',
  'Activation',
  'BatchNormalization',
  'LayerNormalization',
  'Flatten',
  'Reshape',
  'Conv1D',
  'MaxPooling1D',
  'GlobalAveragePooling1D',
];

/** Activations a layer may name. */
export const ALLOWED_ACTIVATIONS: readonly string[] = ['linear', 'relu', 'relu6', 'elu', 'selu', 'sigmoid', 'tanh', 'softmax', 'softplus', 'softsign', 'swish', 'gelu', 'hard_sigmoid'];

const ALLOWED_MODEL_CLASSES = ['Sequential'];

function fail(path: string, message: string): never {
  throw new FedlhsError('MANIFEST_INVALID', `${path}: ${message}`, { details: { path } });
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Checks a TF.js layers topology (the `modelTopology` JSON that tf.LayersModel.toJSON()
 * produces, or Keras' model.to_json()) against the allow-lists. Only data is ever accepted:
 * unknown layer classes, activations or any `function`-like entry are refused with the
 * JSON path of the offending value.
 */
export function validateTopology(topology: unknown, path = 'model.topology'): void {
  if (!isRecord(topology)) fail(path, 'must be an object');
  const className = topology['class_name'];
  if (typeof className !== 'string' || !ALLOWED_MODEL_CLASSES.includes(className)) {
    fail(`${path}.class_name`, `must be one of ${ALLOWED_MODEL_CLASSES.join(', ')}, got ${JSON.stringify(className)}`);
  }
  const config = topology['config'];
  if (!isRecord(config)) fail(`${path}.config`, 'must be an object');
  const layers = config['layers'];
  if (!Array.isArray(layers) || layers.length === 0) fail(`${path}.config.layers`, 'must be a non-empty array');
  layers.forEach((layer: unknown, i) => {
    const lp = `${path}.config.layers[${i}]`;
    if (!isRecord(layer)) fail(lp, 'must be an object');
    const lc = layer['class_name'];
    if (typeof lc !== 'string' || !ALLOWED_LAYERS.includes(lc)) {
      fail(`${lp}.class_name`, `layer type ${JSON.stringify(lc)} is not allowed; allowed: ${ALLOWED_LAYERS.join(', ')}`);
    }
    const lconf = layer['config'];
    if (!isRecord(lconf)) fail(`${lp}.config`, 'must be an object');
    const activation = lconf['activation'];
    if (activation !== undefined && activation !== null && (typeof activation !== 'string' || !ALLOWED_ACTIVATIONS.includes(activation))) {
      fail(`${lp}.config.activation`, `activation ${JSON.stringify(activation)} is not allowed; allowed: ${ALLOWED_ACTIVATIONS.join(', ')}`);
    }
    if (i === 0 && lc !== 'InputLayer' && !Array.isArray(lconf['batch_input_shape']) && !Array.isArray(lconf['input_shape'])) {
      fail(`${lp}.config`, 'the first layer must declare batch_input_shape (or input_shape)');
    }
  });
  scanForCode(topology, path);
}

/** Refuses strings that look like code smuggled into configuration values. */
function scanForCode(value: unknown, path: string): void {
  if (typeof value === 'string') {
    if (/=>|\bfunction\b|\beval\b|require\s*\(|import\s*\(/.test(value)) fail(path, 'looks like code; a study manifest holds data only');
    return;
  }
  if (Array.isArray(value)) {
    value.forEach((v, i) => scanForCode(v, `${path}[${i}]`));
    return;
  }
  if (isRecord(value)) {
    for (const [k, v] of Object.entries(value)) scanForCode(v, `${path}.${k}`);
  }
}
