import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { FedlhsError } from './errors.js';
import { canonicalManifestJson, diffManifests, manifestHash, parseManifest, validateManifest, verifyManifestJson } from './manifest.js';
import { validateTopology } from './topology.js';

type Json = Record<string, unknown>;

/** A small valid manifest; a fresh object on every call so tests can mutate it. */
function baseManifest(): Json {
  return {
    apiVersion: 'fedlhs.v1',
    kind: 'Study',
    name: 'readmit-30d',
    description: 'Thirty-day readmission.',
    model: {
      format: 'tfjs-layers',
      topology: {
        class_name: 'Sequential',
        config: {
          name: 'readmit',
          layers: [
            { class_name: 'Dense', config: { name: 'hidden', units: 8, activation: 'relu', batch_input_shape: [null, 3] } },
            { class_name: 'Dense', config: { name: 'output', units: 1, activation: 'sigmoid' } },
          ],
        },
      },
    },
    training: { loss: 'binaryCrossentropy', optimizer: { name: 'sgd', learningRate: 0.05 }, localEpochs: 1, batchSize: 32 },
    rounds: 3,
    clients: { min: 3, max: 4, quorum: 2 },
    deadlines: { roundSeconds: 60, evaluationSeconds: 30, maxRoundAttempts: 3 },
    data: { featureSpec: 'flat-table/v1', features: ['age', 'bmi', 'los'], label: 'readmitted', holdoutFraction: 0.25 },
    aggregation: { strategy: 'fedavg' },
    seed: 7,
  };
}

const YAML_TEXT = `
# same study as baseManifest(), written by hand
apiVersion: fedlhs.v1
kind: Study
name: readmit-30d
description: Thirty-day readmission.
seed: 7
rounds: 3
clients: { quorum: 2, min: 3, max: 4 }
deadlines:
  roundSeconds: 60
  evaluationSeconds: 30
  maxRoundAttempts: 3
training:
  batchSize: 32
  localEpochs: 1
  loss: binaryCrossentropy
  optimizer:
    learningRate: 0.05
    name: sgd
data:
  featureSpec: flat-table/v1
  features: [age, bmi, los]
  label: readmitted
  holdoutFraction: 0.25
aggregation:
  strategy: fedavg
model:
  format: tfjs-layers
  topology:
    class_name: Sequential
    config:
      name: readmit
      layers:
        - class_name: Dense
          config: { name: hidden, units: 8, activation: relu, batch_input_shape: [null, 3] }
        - class_name: Dense
          config:
            activation: sigmoid
            units: 1
            name: output
`;

/** Deep copy with every object's keys in reverse order. */
function reverseKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(reverseKeys);
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).reverse().map(([k, v]) => [k, reverseKeys(v)]));
  }
  return value;
}

function at(obj: Json, path: string): Json {
  let cur: unknown = obj;
  for (const key of path.split('.')) cur = (cur as Json)[key];
  return cur as Json;
}

function rejection(fn: () => unknown): FedlhsError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(FedlhsError);
    return err as FedlhsError;
  }
  throw new Error('expected a FedlhsError, nothing was thrown');
}

const sha256 = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex');

describe('manifest canonical hash', () => {
  const reference = manifestHash(validateManifest(baseManifest()));

  it('is the SHA-256 of the canonical JSON, which has sorted keys and no whitespace', () => {
    const json = canonicalManifestJson(validateManifest(baseManifest()));
    expect(reference).toBe(sha256(json));
    expect(reference).toMatch(/^[0-9a-f]{64}$/);
    expect(json).toBe(
      '{"aggregation":{"maxUpdatesHeld":100,"parameters":{},"strategy":"fedavg"},"apiVersion":"fedlhs.v1","clients":{"max":4,"min":3,"quorum":2},' +
        '"data":{"featureSpec":"flat-table/v1","features":["age","bmi","los"],"holdoutFraction":0.25,"label":"readmitted","minCellCount":10,"normalization":"none"},' +
        '"deadlines":{"evaluationSeconds":30,"maxRoundAttempts":3,"roundSeconds":60},"description":"Thirty-day readmission.","kind":"Study",' +
        '"model":{"format":"tfjs-layers","topology":{"class_name":"Sequential","config":{"layers":[' +
        '{"class_name":"Dense","config":{"activation":"relu","batch_input_shape":[null,3],"name":"hidden","units":8}},' +
        '{"class_name":"Dense","config":{"activation":"sigmoid","name":"output","units":1}}],"name":"readmit"}}},' +
        '"name":"readmit-30d","rounds":3,"seed":7,' +
        '"training":{"batchSize":32,"localEpochs":1,"loss":"binaryCrossentropy","optimizer":{"learningRate":0.05,"name":"sgd"}},' +
        '"updateValidation":{"normBound":{"type":"none"},"onExceed":"reject"}}',
    );
  });

  it('does not depend on key order', () => {
    const reversed = reverseKeys(baseManifest());
    expect(Object.keys(reversed as Json)[0]).toBe('seed');
    expect(manifestHash(validateManifest(reversed))).toBe(reference);
  });

  it('does not depend on whitespace in the JSON text', () => {
    expect(manifestHash(parseManifest(JSON.stringify(baseManifest())))).toBe(reference);
    expect(manifestHash(parseManifest(`\n\t ${JSON.stringify(baseManifest(), null, 7)}\n\n`))).toBe(reference);
  });

  it('is the same for YAML and JSON text of the same manifest', () => {
    expect(manifestHash(parseManifest(YAML_TEXT))).toBe(reference);
    expect(manifestHash(parseManifest(YAML_TEXT, 'yaml'))).toBe(reference);
    expect(manifestHash(parseManifest(JSON.stringify(baseManifest()), 'json'))).toBe(reference);
  });

  it('applies defaults before hashing', () => {
    const explicit = baseManifest();
    at(explicit, 'data').holdoutFraction = 0.2;
    explicit.description = '';
    explicit.seed = 0;
    at(explicit, 'deadlines').maxRoundAttempts = 3;

    const implicit = baseManifest();
    delete at(implicit, 'data').holdoutFraction;
    delete implicit.description;
    delete implicit.seed;
    delete at(implicit, 'deadlines').maxRoundAttempts;

    const validated = validateManifest(implicit);
    expect(validated.data.holdoutFraction).toBe(0.2);
    expect(validated.description).toBe('');
    expect(validated.seed).toBe(0);
    expect(validated.deadlines.maxRoundAttempts).toBe(3);
    expect(manifestHash(validated)).toBe(manifestHash(validateManifest(explicit)));
    expect(manifestHash(validated)).not.toBe(reference);
  });

  const changes: [string, (m: Json) => void][] = [
    ['name', (m) => (m.name = 'readmit-31d')],
    ['description', (m) => (m.description = 'Thirty-day readmission!')],
    ['topology units', (m) => (((at(m, 'model.topology.config').layers as Json[])[0]!.config as Json).units = 9)],
    ['topology activation', (m) => (((at(m, 'model.topology.config').layers as Json[])[0]!.config as Json).activation = 'tanh')],
    ['topology layer name', (m) => (((at(m, 'model.topology.config').layers as Json[])[1]!.config as Json).name = 'out')],
    ['loss', (m) => (at(m, 'training').loss = 'meanSquaredError')],
    ['optimizer', (m) => (at(m, 'training.optimizer').name = 'adam')],
    ['learning rate', (m) => (at(m, 'training.optimizer').learningRate = 0.1)],
    ['local epochs', (m) => (at(m, 'training').localEpochs = 2)],
    ['batch size', (m) => (at(m, 'training').batchSize = 64)],
    ['rounds', (m) => (m.rounds = 4)],
    ['clients.min', (m) => (at(m, 'clients').min = 2)],
    ['clients.max', (m) => (at(m, 'clients').max = 5)],
    ['clients.quorum', (m) => (at(m, 'clients').quorum = 3)],
    ['roundSeconds', (m) => (at(m, 'deadlines').roundSeconds = 61)],
    ['evaluationSeconds', (m) => (at(m, 'deadlines').evaluationSeconds = 31)],
    ['maxRoundAttempts', (m) => (at(m, 'deadlines').maxRoundAttempts = 4)],
    ['normalization', (m) => (at(m, 'data').normalization = 'federated-zscore')],
    ['minCellCount', (m) => (at(m, 'data').minCellCount = 5)],
    ['normalizationFallback', (m) => Object.assign(at(m, 'data'), { normalization: 'federated-zscore', normalizationFallback: 'exclude' })],
    ['localSteps', (m) => (at(m, 'training').localSteps = 100)],
    ['strategy', (m) => (at(m, 'aggregation').strategy = 'fedmedian')],
    ['strategy parameter', (m) => ((m as Record<string, Json>).aggregation = { strategy: 'fedprox', parameters: { mu: 0.1 } })],
    ['norm bound', (m) => ((m as Record<string, Json>).updateValidation = { normBound: { type: 'fixed', value: 5 } })],
    ['feature order', (m) => (at(m, 'data').features = ['bmi', 'age', 'los'])],
    ['feature list', (m) => {
      at(m, 'data').features = ['age', 'bmi'];
      ((at(m, 'model.topology.config').layers as Json[])[0]!.config as Json).batch_input_shape = [null, 2];
    }],
    ['label', (m) => (at(m, 'data').label = 'died')],
    ['holdoutFraction', (m) => (at(m, 'data').holdoutFraction = 0.3)],
    ['seed', (m) => (m.seed = 8)],
  ];

  it.each(changes)('changes when %s changes', (_label, mutate) => {
    const m = baseManifest();
    mutate(m);
    expect(manifestHash(validateManifest(m))).not.toBe(reference);
  });

  it('gives every single change a distinct hash', () => {
    const hashes = changes.map(([, mutate]) => {
      const m = baseManifest();
      mutate(m);
      return manifestHash(validateManifest(m));
    });
    expect(new Set([reference, ...hashes]).size).toBe(changes.length + 1);
  });
});

describe('verifyManifestJson', () => {
  const manifest = validateManifest(baseManifest());
  const json = canonicalManifestJson(manifest);
  const hash = manifestHash(manifest);

  it('accepts canonical JSON with the right hash and returns the manifest', () => {
    expect(verifyManifestJson(json, hash)).toEqual(manifest);
  });

  it('rejects a wrong hash with DATA_LOSS', () => {
    const wrong = '0'.repeat(64);
    const err = rejection(() => verifyManifestJson(json, wrong));
    expect(err.code).toBe('DATA_LOSS');
    expect(err.message).toBe(`manifest hash mismatch: announced ${wrong}, content hashes to ${hash}`);
  });

  it('rejects content changed after hashing with DATA_LOSS', () => {
    const tampered = json.replace('"learningRate":0.05', '"learningRate":0.5');
    expect(tampered).not.toBe(json);
    expect(rejection(() => verifyManifestJson(tampered, hash)).code).toBe('DATA_LOSS');
  });

  it('rejects non-canonical JSON even when the hash matches it', () => {
    const pretty = JSON.stringify(manifest, null, 2);
    const err = rejection(() => verifyManifestJson(pretty, sha256(pretty)));
    expect(err.code).toBe('MANIFEST_INVALID');
    expect(err.message).toMatchInlineSnapshot(`"manifest JSON is not in canonical form (RFC 8785 with defaults applied)"`);
  });

  it('rejects canonical-looking JSON that omits defaults', () => {
    const m = baseManifest();
    delete at(m, 'data').holdoutFraction;
    // Sorted keys and no whitespace, but holdoutFraction is missing: the canonical form has it.
    const sorted = canonicalManifestJson(m as never);
    expect(sorted).not.toContain('holdoutFraction');
    const err = rejection(() => verifyManifestJson(sorted, sha256(sorted)));
    expect(err.code).toBe('MANIFEST_INVALID');
    expect(err.message).toBe('manifest JSON is not in canonical form (RFC 8785 with defaults applied)');
  });

  it('rejects valid canonical JSON of an invalid manifest with MANIFEST_INVALID', () => {
    const m = { ...manifest, rounds: 0 };
    const text = canonicalManifestJson(m);
    expect(rejection(() => verifyManifestJson(text, sha256(text))).code).toBe('MANIFEST_INVALID');
  });
});

describe('manifest validation', () => {
  it.each<[string, (m: Json) => void, string]>([
    ['quorum above min', (m) => (at(m, 'clients').quorum = 4), 'invalid study manifest: clients.quorum: must be <= clients.min (4 > 3)'],
    ['min above max', (m) => Object.assign(at(m, 'clients'), { min: 5, max: 4, quorum: 2 }), 'invalid study manifest: clients.min: must be <= clients.max (5 > 4)'],
    ['label also a feature', (m) => (at(m, 'data').label = 'bmi'), 'invalid study manifest: data.label: must not also be a feature'],
    ['repeated feature', (m) => (at(m, 'data').features = ['age', 'age', 'los']), 'invalid study manifest: data.features: must not repeat a feature'],
    ['normalizationFallback without federated-zscore', (m) => Object.assign(at(m, 'data'), { normalization: 'local-zscore', normalizationFallback: 'range' }), 'invalid study manifest: data.normalizationFallback: is only for data.normalization federated-zscore'],
    ['unknown normalizationFallback', (m) => Object.assign(at(m, 'data'), { normalization: 'federated-zscore', normalizationFallback: 'zero' }), 'invalid study manifest: data.normalizationFallback: Invalid option: expected one of "fail"|"range"|"exclude"'],
  ])('rejects %s, naming the path', (_label, mutate, message) => {
    const m = baseManifest();
    mutate(m);
    const err = rejection(() => validateManifest(m));
    expect(err.code).toBe('MANIFEST_INVALID');
    expect(err.message).toBe(message);
    expect(err.details).toEqual({ path: /^invalid study manifest: ([^:]+):/.exec(message)?.[1] });
  });

  it('rejects an unknown top-level key, naming it', () => {
    const m = { ...baseManifest(), schedule: 'nightly' };
    expect(() => validateManifest(m)).toThrowErrorMatchingInlineSnapshot(`[FedlhsError: invalid study manifest: (root): Unrecognized key: "schedule"]`);
  });

  it('rejects an unknown nested key, naming its parent path', () => {
    const m = baseManifest();
    at(m, 'training').momentum = 0.9;
    expect(() => validateManifest(m)).toThrowErrorMatchingInlineSnapshot(`[FedlhsError: invalid study manifest: training: Unrecognized key: "momentum"]`);
  });

  it('rejects a missing field, naming its path', () => {
    const m = baseManifest();
    delete at(m, 'training').batchSize;
    expect(() => validateManifest(m)).toThrowErrorMatchingInlineSnapshot(`[FedlhsError: invalid study manifest: training.batchSize: Invalid input: expected number, received undefined]`);
  });

  it('rejects an out-of-range number, naming its path', () => {
    const m = baseManifest();
    at(m, 'data').holdoutFraction = 1;
    expect(() => validateManifest(m)).toThrowErrorMatchingInlineSnapshot(`[FedlhsError: invalid study manifest: data.holdoutFraction: Too big: expected number to be <1]`);
  });

  it('rejects text that is neither JSON nor YAML', () => {
    const err = rejection(() => parseManifest('{ "name": '));
    expect(err.code).toBe('MANIFEST_INVALID');
    expect(err.message.startsWith('study manifest is not valid JSON or YAML: ')).toBe(true);
  });
});

describe('data.normalizationFallback', () => {
  it("is optional and has no default, so manifests without it keep their hash; 'fail' is then implied", () => {
    const m = baseManifest();
    at(m, 'data').normalization = 'federated-zscore';
    const without = validateManifest(m);
    expect(without.data.normalizationFallback).toBeUndefined();
    expect(canonicalManifestJson(without)).not.toContain('normalizationFallback');
    for (const fallback of ['fail', 'range', 'exclude'] as const) {
      at(m, 'data').normalizationFallback = fallback;
      const withIt = validateManifest(m);
      expect(withIt.data.normalizationFallback).toBe(fallback);
      expect(manifestHash(withIt)).not.toBe(manifestHash(without));
    }
  });
});

describe('deadlines.readinessSeconds', () => {
  it('is optional and has no default, so manifests without it keep their hash', () => {
    const without = validateManifest(baseManifest());
    expect(without.deadlines.readinessSeconds).toBeUndefined();
    expect(canonicalManifestJson(without)).not.toContain('readinessSeconds');
    const m = baseManifest();
    at(m, 'deadlines').readinessSeconds = 3600;
    const withIt = validateManifest(m);
    expect(withIt.deadlines.readinessSeconds).toBe(3600);
    expect(manifestHash(withIt)).not.toBe(manifestHash(without));
    at(m, 'deadlines').readinessSeconds = 0;
    expect(rejection(() => validateManifest(m)).message).toMatch(/^invalid study manifest: deadlines\.readinessSeconds: /);
  });
});

describe('model shape against the features', () => {
  const layers = (m: Json): Json[] => at(m, 'model.topology.config').layers as Json[];

  it('refuses an input width that is not the number of features, naming both', () => {
    const m = baseManifest();
    (layers(m)[0]!.config as Json).batch_input_shape = [null, 241];
    const err = rejection(() => validateManifest(m));
    expect(err.code).toBe('MANIFEST_INVALID');
    expect(err.message).toMatchInlineSnapshot(`"invalid study manifest: model.topology: model input width 241 ≠ 3 features (data.features): the first layer's batch_input_shape must end in 3, one input per feature (features are numeric columns; there is no one-hot encoding)"`);
  });

  it('reads the width from input_shape, an InputLayer or camelCase keys, and names cohort features', () => {
    const m = baseManifest();
    const first = layers(m)[0]!.config as Json;
    delete first.batch_input_shape;
    first.input_shape = [4];
    expect(rejection(() => validateManifest(m)).message).toContain('model input width 4 ≠ 3 features (data.features): the first layer\'s input_shape must end in 3');
    first.input_shape = [3];
    expect(() => validateManifest(m)).not.toThrow();

    const n = baseManifest();
    layers(n).unshift({ class_name: 'InputLayer', config: { batchInputShape: [null, 2] } });
    delete (layers(n)[1]!.config as Json).batch_input_shape;
    expect(rejection(() => validateManifest(n)).message).toContain('model input width 2 ≠ 3 features (data.features)');

    const c = baseManifest();
    const data = at(c, 'data');
    delete data.features;
    data.featureSpec = 'cohort/v1';
    data.cohort = {
      index: { encounterClass: 'wellness', from: '2015-01-01', to: '2018-12-31' }, eligibility: { minAge: 18, maxAge: 90 }, lookbackDays: 365,
      features: [{ name: 'age', type: 'age' }, { name: 'female', type: 'sex', value: 'female' }],
      label: { condition: { system: 'SNOMED', codes: ['44054006'] }, horizonDays: 365 },
    };
    expect(rejection(() => validateManifest(c)).message).toContain('model input width 3 ≠ 2 features (data.cohort.features)');
    (layers(c)[0]!.config as Json).batch_input_shape = [null, 2];
    expect(() => validateManifest(c)).not.toThrow();
  });

  it('refuses an input that is not [batch, features]', () => {
    const m = baseManifest();
    (layers(m)[0]!.config as Json).batch_input_shape = [null, 3, 1];
    expect(rejection(() => validateManifest(m)).message).toBe('invalid study manifest: model.topology: the model must take one 2-D input [batch, features]; its first layer\'s batch_input_shape is [null,3,1]');
  });

  it('refuses a model that does not end in one score per record', () => {
    const m = baseManifest();
    (layers(m)[1]!.config as Json).units = 2;
    expect(rejection(() => validateManifest(m)).message).toBe('invalid study manifest: model.topology: the model must produce one score per record ([batch, 1]); its last Dense layer produces 2 units');
    // Shape-preserving layers after the last Dense layer do not hide it.
    layers(m).push({ class_name: 'Activation', config: { name: 'act', activation: 'sigmoid' } }, { class_name: 'Dropout', config: { name: 'drop', rate: 0.1 } });
    expect(rejection(() => validateManifest(m)).message).toContain('its last Dense layer produces 2 units');
    (layers(m)[1]!.config as Json).units = 1;
    expect(() => validateManifest(m)).not.toThrow();
    layers(m).push({ class_name: 'Reshape', config: { name: 'r', target_shape: [1, 1] } });
    expect(rejection(() => validateManifest(m)).message).toContain('its last Reshape layer produces shape [null,1,1]');
  });
});

describe('topology allow-list', () => {
  const layers = (m: Json): Json[] => at(m, 'model.topology.config').layers as Json[];

  it("rejects a 'Lambda' layer", () => {
    const m = baseManifest();
    layers(m).splice(1, 0, { class_name: 'Lambda', config: { name: 'l' } });
    const err = rejection(() => validateManifest(m));
    expect(err).toMatchObject({ code: 'MANIFEST_INVALID', details: { path: 'model.topology.config.layers[1].class_name' } });
    expect(err.message).toMatchInlineSnapshot(`"invalid study manifest: model.topology.config.layers[1].class_name: layer type "Lambda" is not allowed; allowed: InputLayer, Dense, Dropout, Activation, BatchNormalization, LayerNormalization, Flatten, Reshape, Conv1D, MaxPooling1D, GlobalAveragePooling1D"`);
  });

  it('rejects a disallowed activation', () => {
    const m = baseManifest();
    (layers(m)[1]!.config as Json).activation = 'my_custom_act';
    expect(rejection(() => validateManifest(m)).message).toMatchInlineSnapshot(`"invalid study manifest: model.topology.config.layers[1].config.activation: activation "my_custom_act" is not allowed; allowed: linear, relu, relu6, elu, selu, sigmoid, tanh, softmax, softplus, softsign, swish, gelu, hard_sigmoid"`);
  });

  it('rejects an activation given as an object', () => {
    const m = baseManifest();
    (layers(m)[0]!.config as Json).activation = { class_name: 'relu' };
    expect(rejection(() => validateManifest(m)).message).toContain('model.topology.config.layers[0].config.activation: activation {"class_name":"relu"} is not allowed');
  });

  it('rejects a first layer without batch_input_shape', () => {
    const m = baseManifest();
    delete (layers(m)[0]!.config as Json).batch_input_shape;
    expect(() => validateManifest(m)).toThrowErrorMatchingInlineSnapshot(`[FedlhsError: invalid study manifest: model.topology.config.layers[0].config: the first layer must declare batch_input_shape (or input_shape)]`);
  });

  it('accepts input_shape instead of batch_input_shape, and an InputLayer first', () => {
    const m = baseManifest();
    const first = layers(m)[0]!.config as Json;
    delete first.batch_input_shape;
    first.input_shape = [3];
    expect(() => validateManifest(m)).not.toThrow();

    const n = baseManifest();
    layers(n).unshift({ class_name: 'InputLayer', config: { batch_input_shape: [null, 3] } });
    delete (layers(n)[1]!.config as Json).batch_input_shape;
    expect(() => validateManifest(n)).not.toThrow();
  });

  it('rejects a string that looks like code anywhere in the topology', () => {
    const m = baseManifest();
    (layers(m)[1]!.config as Json).name = 'x => process.exit(1)';
    expect(() => validateManifest(m)).toThrowErrorMatchingInlineSnapshot(`[FedlhsError: invalid study manifest: model.topology.config.layers[1].config.name: looks like code; a study manifest holds data only]`);

    for (const code of ['function () {}', 'eval("1")', "require('fs')", "import('fs')"]) {
      const t = baseManifest();
      at(t, 'model.topology.config').name = code;
      expect(rejection(() => validateManifest(t)).message).toBe('invalid study manifest: model.topology.config.name: looks like code; a study manifest holds data only');
    }
  });

  it('accepts harmless strings that merely contain similar words', () => {
    const m = baseManifest();
    (layers(m)[1]!.config as Json).name = 'functional_output';
    expect(() => validateManifest(m)).not.toThrow();
  });

  it('rejects model classes other than Sequential, and an empty layer list', () => {
    expect(() => validateTopology({ class_name: 'Model', config: { layers: [] } })).toThrowErrorMatchingInlineSnapshot(`[FedlhsError: model.topology.class_name: must be one of Sequential, got "Model"]`);
    expect(() => validateTopology({ class_name: 'Sequential', config: { layers: [] } })).toThrowErrorMatchingInlineSnapshot(`[FedlhsError: model.topology.config.layers: must be a non-empty array]`);
    expect(() => validateTopology('Sequential')).toThrowErrorMatchingInlineSnapshot(`[FedlhsError: model.topology: must be an object]`);
  });
});

describe('diffManifests', () => {
  it('lists nothing for equal manifests, whatever the key order', () => {
    expect(diffManifests(baseManifest(), baseManifest())).toEqual([]);
    expect(diffManifests(baseManifest(), reverseKeys(baseManifest()))).toEqual([]);
  });

  it('lists each changed path with its before and after values, sorted by key', () => {
    const before = validateManifest(baseManifest());
    const m = baseManifest();
    at(m, 'training.optimizer').learningRate = 0.1;
    at(m, 'data').features = ['age', 'weight', 'los'];
    m.rounds = 10;
    (((at(m, 'model.topology.config').layers as Json[])[0]!.config as Json).units) = 16;
    const after = validateManifest(m);
    expect(diffManifests(before, after)).toEqual([
      { path: 'data.features[1]', before: 'bmi', after: 'weight' },
      { path: 'model.topology.config.layers[0].config.units', before: 8, after: 16 },
      { path: 'rounds', before: 3, after: 10 },
      { path: 'training.optimizer.learningRate', before: 0.05, after: 0.1 },
    ]);
  });

  it('reports a whole array when its length changes, and absent keys as undefined', () => {
    const a = { data: { features: ['a', 'b'] }, note: 'x' };
    const b = { data: { features: ['a', 'b', 'c'] }, extra: 1 };
    expect(diffManifests(a, b)).toEqual([
      { path: 'data.features', before: ['a', 'b'], after: ['a', 'b', 'c'] },
      { path: 'extra', before: undefined, after: 1 },
      { path: 'note', before: 'x', after: undefined },
    ]);
  });

  it('names the root when whole values differ', () => {
    expect(diffManifests(1, 2)).toEqual([{ path: '(root)', before: 1, after: 2 }]);
  });
});

describe('manifest aggregation and update validation', () => {
  const withAggregation = (aggregation: unknown, clients?: unknown): unknown => ({ ...baseManifest(), aggregation, ...(clients === undefined ? {} : { clients }) });
  it('names a bad strategy parameter', () => {
    expect(() => validateManifest(withAggregation({ strategy: 'fedprox', parameters: { mu: -1 } }))).toThrowError(/aggregation\.parameters: .*mu/);
    expect(() => validateManifest(withAggregation({ strategy: 'fedavg', parameters: { mu: 1 } }))).toThrowError(/aggregation\.parameters/);
  });
  it('requires a quorum large enough for the strategy', () => {
    expect(() => validateManifest(withAggregation({ strategy: 'krum', parameters: { byzantine: 1 } }, { min: 4, max: 5, quorum: 4 }))).toThrowError(
      /clients\.quorum: must be >= 5, the fewest updates krum can aggregate/,
    );
    expect(validateManifest(withAggregation({ strategy: 'krum', parameters: { byzantine: 1 } }, { min: 5, max: 5, quorum: 5 })).aggregation.strategy).toBe('krum');
  });
  it('requires maxUpdatesHeld to cover clients.max for order-statistic strategies', () => {
    expect(() => validateManifest(withAggregation({ strategy: 'fedmedian', maxUpdatesHeld: 3 }))).toThrowError(/aggregation\.maxUpdatesHeld: fedmedian holds every update/);
  });
});

describe('manifest privacy section (issue 14)', () => {
  const dp = { placement: 'local', noiseMultiplier: 1.1, clipping: { mode: 'fixed', norm: 1 } };
  it('is optional (the hash of a manifest without it is unchanged) and validates its mechanism', () => {
    const plain = validateManifest(baseManifest());
    expect(plain.privacy).toBeUndefined();
    const m = validateManifest({ ...baseManifest(), privacy: { dp } });
    expect(m.privacy?.dp).toMatchObject({ placement: 'local', noiseMultiplier: 1.1 });
    expect(() => validateManifest({ ...baseManifest(), privacy: { dp: { ...dp, noiseMultiplier: 0 } } })).toThrow(/privacy\.dp\.noiseMultiplier/);
    expect(() => validateManifest({ ...baseManifest(), privacy: { dp: { ...dp, clipping: { mode: 'adaptive', initialNorm: 1, targetQuantile: 1 } } } })).toThrow(/privacy\.dp\.clipping\.targetQuantile/);
  });

  it('needs fedavg with DP, and exact counts with federated normalisation', () => {
    const byzantine = { ...baseManifest(), aggregation: { strategy: 'fedprox', parameters: { mu: 0.01 } }, privacy: { dp } };
    expect(() => validateManifest(byzantine)).toThrow(/privacy\.dp: needs aggregation\.strategy "fedavg"/);
    const base = baseManifest() as { data: Record<string, unknown> };
    const rounded = { ...base, data: { ...base.data, normalization: 'federated-zscore' }, privacy: { counts: { disclosure: 'rounded', roundTo: 10 } } };
    expect(() => validateManifest(rounded)).toThrow(/privacy\.counts\.disclosure: "rounded" cannot be used with data\.normalization "federated-zscore"/);
  });
});

describe('manifest secure aggregation (issue 14)', () => {
  const base = baseManifest() as Record<string, unknown> & { clients: Record<string, unknown> };
  const with_ = (sa: Record<string, unknown>) => ({ ...base, clients: { min: 6, max: 8, quorum: 4 }, privacy: { secureAggregation: { clipRange: 1, ...sa } } });
  it('takes neighbours below clients.min and a threshold that is a strict majority of them', () => {
    expect(validateManifest(with_({ neighbours: 4, threshold: 3 })).privacy?.secureAggregation).toMatchObject({ neighbours: 4, threshold: 3, graph: 'random-regular', valueBits: 20 });
    expect(() => validateManifest(with_({ neighbours: 4, threshold: 2 }))).toThrow(/threshold: must be a strict majority of neighbours/);
    expect(() => validateManifest(with_({ neighbours: 6 }))).toThrow(/neighbours: must be below clients\.min/);
  });
  it('refuses adaptive DP clipping (each clinic\'s clipped-fraction bit would be seen alone)', () => {
    const dp = (clipping: Record<string, unknown>) => ({ ...with_({ neighbours: 4 }), privacy: { secureAggregation: { clipRange: 1, neighbours: 4 }, dp: { placement: 'distributed', noiseMultiplier: 1, clipping } } });
    expect(() => validateManifest(dp({ mode: 'adaptive', initialNorm: 1 }))).toThrow(/privacy\.dp\.clipping\.mode: adaptive clipping with secure aggregation is not supported yet: the clipped-fraction count would be visible per clinic/);
    expect(validateManifest(dp({ mode: 'fixed', norm: 1 })).privacy?.dp?.clipping.mode).toBe('fixed');
  });
});
