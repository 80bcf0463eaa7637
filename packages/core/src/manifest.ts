import canonicalizeModule from 'canonicalize';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { FedlhsError, isFedlhsError } from './errors.js';
import { sha256Hex } from './tensors.js';
import { validateTopology } from './topology.js';
import { cohortSpecSchema, type CohortSpec } from './cohort-spec.js';
import { STRATEGY_NAMES, createStrategy, validateStrategyConfig, type StrategyConfig, type StrategyName } from './strategies/index.js';

// canonicalize is CommonJS whose typings declare an ES default export; under NodeNext the
// default import is module.exports itself, the function.
const canonicalize = canonicalizeModule as unknown as (value: unknown) => string | undefined;

/**
 * Checks applied to every update before it reaches the strategy: the L2 distance from the
 * round's global model must stay within a bound — fixed, or adaptive (a multiple of the
 * median distance of the study's recent accepted updates, once `minHistory` exist) — and an
 * update beyond it is rejected (reason NORM_BOUND) or, with onExceed 'clip', scaled back to it.
 */
export const updateValidationSchema = z
  .strictObject({
    normBound: z
      .discriminatedUnion('type', [
        z.strictObject({ type: z.literal('none') }),
        z.strictObject({ type: z.literal('fixed'), value: z.number().positive() }),
        z.strictObject({
          type: z.literal('adaptive'),
          multiple: z.number().gt(1).max(1000),
          minHistory: z.number().int().min(1).max(10000).default(3),
          window: z.number().int().min(1).max(100000).default(50),
        }),
      ])
      .default({ type: 'none' }),
    onExceed: z.enum(['reject', 'clip']).default('reject'),
  })
  .default({ normBound: { type: 'none' }, onExceed: 'reject' });

export type UpdateValidation = z.output<typeof updateValidationSchema>;

/** A study (and series) name: 1-63 lowercase letters, digits, ".", "_" or "-", starting with a letter or digit. */
export const STUDY_NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,62}$/;
/** A study name in a schema. */
export const studyNameSchema = z.string().regex(STUDY_NAME_PATTERN, 'must be 1-63 lowercase letters, digits, ".", "_" or "-", starting with a letter or digit');
const identifier = studyNameSchema;
const columnName = z.string().min(1).max(128);

const riskBandName = z.string().regex(/^[a-z][a-z0-9-]{0,31}$/, 'must be 1-32 lowercase letters, digits or "-", starting with a letter');
const cardText = z.string().min(1).max(2000);

/**
 * DP-FedAvg (issue 14, docs/design/privacy.md). Each clinic clips its update (the change from the
 * round's model) to L2 norm C and Gaussian noise of standard deviation `noiseMultiplier`·C
 * protects it: added by the coordinator to the sum (`central`), by each clinic so that the sum
 * of `clients.min` clinics carries it (`distributed`: each adds noiseMultiplier·C/√clients.min;
 * needs secure aggregation to protect one clinic from the coordinator), or by each clinic in full
 * (`local`). The unit protected is a whole clinic's data (so every patient in it). Clipping is
 * fixed, or adaptive by the quantile method of Andrew et al. 2021 (C ← C·exp(−η(b̄ − γ)), b̄ the
 * noisy fraction of clinics whose update norm was at most C).
 */
export const privacySectionSchema = z.strictObject({
  dp: z.strictObject({
    placement: z.enum(['central', 'distributed', 'local']),
    noiseMultiplier: z.number().positive().max(1000),
    clipping: z.discriminatedUnion('mode', [
      z.strictObject({ mode: z.literal('fixed'), norm: z.number().positive().max(1e6) }),
      z.strictObject({
        mode: z.literal('adaptive'),
        initialNorm: z.number().positive().max(1e6),
        targetQuantile: z.number().gt(0).lt(1).default(0.5),
        learningRate: z.number().positive().max(10).default(0.2),
        /** Noise on the clipped-fraction count, as a multiple of 1 (one clinic's bit). */
        countNoiseMultiplier: z.number().nonnegative().max(1000).default(10),
      }),
    ]),
  }).optional(),
  /**
   * Secure aggregation (SecAgg+; proto "Secure aggregation"): the coordinator learns only the sum
   * of the survivors' updates. Each clinic shares its secrets with `neighbours` others (a `graph`
   * over the round's cohort), `threshold` of them (default a strict majority) rebuild a dropped
   * clinic's masks; updates are clipped to ±`clipRange` per value and quantised with `valueBits`.
   */
  secureAggregation: z.strictObject({
    neighbours: z.number().int().min(2).max(1000),
    threshold: z.number().int().min(1).max(1000).optional(),
    graph: z.enum(['ring', 'random-regular']).default('random-regular'),
    valueBits: z.number().int().min(4).max(48).default(20),
    clipRange: z.number().positive().max(1e6),
  }).optional(),
  /**
   * Counts that leave a clinic (statistics rows, evaluation example counts): `exact`, or rounded
   * to a multiple of `roundTo` (the small-cell rule still applies on top).
   */
  counts: z.strictObject({ disclosure: z.enum(['exact', 'rounded']).default('exact'), roundTo: z.number().int().min(1).max(1000).default(10) }).optional(),
});
export type PrivacySection = z.output<typeof privacySectionSchema>;

/** The release section of a manifest (see `releasePolicy` for the defaults when absent). */
export const releaseSectionSchema = z
  .strictObject({
    /**
     * Which committed round is released: the best example-weighted federated validation AUC
     * (ties to the later round), the lowest validation loss, or the last round (the release then
     * says that no selection was made).
     */
    selection: z.enum(['best-validation-auc', 'best-validation-loss', 'last-round']).default('best-validation-auc'),
    /** Share of each clinic's hold-out split used as the test part (figures only); the rest validates (chooses). */
    testFraction: z.number().gt(0).lt(1).default(0.5),
    /** Risk bands, ascending: a risk r is in the first band with r < upTo; the last band's upTo is 1 and includes 1. */
    riskBands: z.array(z.strictObject({ name: riskBandName, upTo: z.number().gt(0).max(1) })).min(1).max(10).optional(),
    /** The model card's words (the rest is filled from the manifest and the figures). */
    modelCard: z
      .strictObject({
        intendedUse: cardText.optional(),
        outcome: cardText.optional(),
        population: cardText.optional(),
        limitations: z.array(cardText).max(20).optional(),
      })
      .optional(),
  })
  .superRefine((r, ctx) => {
    const bands = r.riskBands;
    if (bands === undefined) return;
    bands.forEach((b, i) => {
      if (i > 0 && !(b.upTo > bands[i - 1]!.upTo)) ctx.addIssue({ code: 'custom', path: ['riskBands', i, 'upTo'], message: 'must be above the previous band\'s upTo' });
    });
    if (bands[bands.length - 1]!.upTo !== 1) ctx.addIssue({ code: 'custom', path: ['riskBands', bands.length - 1, 'upTo'], message: 'the last band must end at 1' });
    if (new Set(bands.map((b) => b.name)).size !== bands.length) ctx.addIssue({ code: 'custom', path: ['riskBands'], message: 'band names must be unique' });
  });

/** Risk bands when a manifest declares none. */
export const DEFAULT_RISK_BANDS: readonly { name: string; upTo: number }[] = [
  { name: 'low', upTo: 0.1 },
  { name: 'moderate', upTo: 0.2 },
  { name: 'high', upTo: 1 },
];

/** A manifest's release section with every default applied. */
export interface ReleasePolicy {
  selection: 'best-validation-auc' | 'best-validation-loss' | 'last-round';
  testFraction: number;
  riskBands: readonly { name: string; upTo: number }[];
  modelCard: { intendedUse?: string | undefined; outcome?: string | undefined; population?: string | undefined; limitations?: string[] | undefined };
}

/** The effective release policy of a manifest (defaults for an absent section or field). */
export function releasePolicy(m: Pick<StudyManifest, 'release'>): ReleasePolicy {
  return {
    selection: m.release?.selection ?? 'best-validation-auc',
    testFraction: m.release?.testFraction ?? 0.5,
    riskBands: m.release?.riskBands ?? DEFAULT_RISK_BANDS,
    modelCard: m.release?.modelCard ?? {},
  };
}

/** The band a risk falls in (the last band takes 1 and anything above). */
export function riskBand(risk: number, bands: readonly { name: string; upTo: number }[]): string {
  for (const b of bands) if (risk < b.upTo) return b.name;
  return bands[bands.length - 1]!.name;
}

/**
 * The study manifest schema. A study is data, not code: the model is a TF.js layers topology
 * checked against an allow-list; everything else is numbers and names. Defaults are applied
 * before hashing, so two manifests that mean the same thing have the same hash.
 */
export const studyManifestSchema = z
  .object({
    apiVersion: z.literal('fedlhs.v1'),
    kind: z.literal('Study'),
    name: identifier,
    description: z.string().max(4000).default(''),
    model: z.strictObject({
      format: z.literal('tfjs-layers'),
      topology: z.record(z.string(), z.unknown()),
      /**
       * Warm start (issue 13): round 0 is a release's weights instead of the seeded initialiser,
       * pinned by their SHA-256 (the weights.bin of that release), so the hash a clinic approves
       * covers exactly where training starts. The release must exist on the coordinator and fit
       * the topology. Optional without a default (manifests that leave it out keep their hash).
       */
      initialWeights: z
        .strictObject({
          release: z.strictObject({
            studyName: identifier,
            version: z.number().int().min(1).max(1_000_000),
            weightsSha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be a SHA-256 digest (64 lower-case hex digits)'),
          }),
        })
        .optional(),
    }),
    training: z.strictObject({
      loss: z.enum(['binaryCrossentropy', 'meanSquaredError']),
      optimizer: z.strictObject({
        name: z.enum(['sgd', 'adam', 'rmsprop', 'adagrad']),
        learningRate: z.number().positive().max(10),
      }),
      localEpochs: z.number().int().min(1).max(1000),
      /** If set, each clinic trains exactly this many mini-batch steps per round instead of localEpochs passes. */
      localSteps: z.number().int().min(1).max(1_000_000).optional(),
      batchSize: z.number().int().min(1).max(65536),
    }),
    rounds: z.number().int().min(1).max(100000),
    clients: z.strictObject({
      /** Fewest READY clinics a round starts with. */
      min: z.number().int().min(1).max(10000),
      /** Most clinics selected for a round. */
      max: z.number().int().min(1).max(10000),
      /** Accepted updates needed to commit a round. */
      quorum: z.number().int().min(1).max(10000),
    }),
    deadlines: z.strictObject({
      /** Seconds from the start of training until a round closes. */
      roundSeconds: z.number().min(1).max(7 * 86400),
      /** Seconds allowed for federated evaluation of a new global model. */
      evaluationSeconds: z.number().min(1).max(7 * 86400),
      /** Attempts of one round before the study fails. */
      maxRoundAttempts: z.number().int().min(1).max(100).default(3),
      /**
       * Seconds a round attempt waits for clients.min READY clinics before the study fails,
       * naming each site's readiness and its reason. Optional without a default: absent, a
       * study waits for its clinics indefinitely, and manifests that leave it out keep their hash.
       */
      readinessSeconds: z.number().min(1).max(30 * 86400).optional(),
    }),
    data: z.strictObject({
      /**
       * What every clinic must produce: 'flat-table/v1' (a table with the named numeric
       * `features` and a 0/1 `label` column) or 'cohort/v1' (EHR events turned into the
       * `cohort` definition's features and label).
       */
      featureSpec: z.enum(['flat-table/v1', 'cohort/v1']),
      features: z.array(columnName).min(1).max(10000).optional(),
      label: columnName.default('label'),
      cohort: cohortSpecSchema.optional(),
      /** Fraction of each clinic's records held out for federated evaluation (split by record key). */
      holdoutFraction: z.number().gt(0).lt(1).default(0.2),
      /** flat-table/v1 only: a column whose value "test" marks hold-out rows, instead of the hashed split. */
      splitColumn: columnName.optional(),
      /**
       * Feature scaling: 'federated-zscore' computes global means and standard deviations from
       * the clinics' sufficient statistics before round 1; 'local-zscore' scales each clinic by
       * its own training data; 'none' leaves values as they are. Missing values become the mean.
       */
      normalization: z.enum(['none', 'federated-zscore', 'local-zscore']).default('none'),
      /**
       * federated-zscore only: what happens to a feature whose statistics every clinic withheld
       * (small cells). 'fail' (the default when absent): the study fails before training, naming
       * the features; 'range': mean = midpoint and SD = width / 4 of the declared range (0/1
       * features 0.5 and 0.5; a feature without a declared range still fails); 'exclude': the
       * feature enters the model as the constant 0. Optional, without a default, so manifests
       * that leave it out keep their hash.
       */
      normalizationFallback: z.enum(['fail', 'range', 'exclude']).optional(),
      /**
       * Counts below this are withheld in every statistic a clinic reports and every per-site
       * figure, and a clinic needs at least this many cases and non-cases in each split to be
       * READY. 0 turns all of that off: for public benchmark data only (the review says so).
       */
      minCellCount: z.number().int().min(0).max(1000).default(10),
    }),
    aggregation: z.strictObject({
      /** Server-side strategy; its parameters (e.g. mu, byzantine, eta) go in `parameters`. */
      strategy: z.enum(STRATEGY_NAMES as unknown as [StrategyName, ...StrategyName[]]),
      parameters: z.record(z.string(), z.number()).default({}),
      /** Order-statistic strategies hold every update of a round: at most this many. */
      maxUpdatesHeld: z.number().int().min(1).max(10000).default(100),
    }),
    updateValidation: updateValidationSchema,
    /**
     * How the study's result is released (issue 12). Optional without a default, so manifests
     * that leave it out keep their hash; `releasePolicy(manifest)` gives the effective values.
     */
    release: releaseSectionSchema.optional(),
    /**
     * Differential privacy (issue 14): the exact mechanism, part of the approved hash. Optional
     * without a default (manifests that leave it out keep their hash; no DP then).
     */
    privacy: privacySectionSchema.optional(),
    /**
     * A run of a study series (issue 13, series.ts): which series, which run, and the hash of the
     * series template it was derived from. Optional without a default (manifests of single
     * studies keep their hash).
     */
    series: z
      .strictObject({
        name: identifier,
        run: z.number().int().min(1).max(1_000_000),
        templateSha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be a SHA-256 digest (64 lower-case hex digits)'),
        /**
         * The series' champion when the run was derived: the release (of the series' name) every
         * clinic scores beside each round's model on the same test patients (proto "Champion and
         * challenger"). Absent while the series has no champion.
         */
        champion: z
          .strictObject({
            version: z.number().int().min(1).max(1_000_000),
            weightsSha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be a SHA-256 digest (64 lower-case hex digits)'),
          })
          .optional(),
      })
      .optional(),
    /** Seed for the initial weights and the clinics' train/hold-out split. */
    seed: z.number().int().min(0).max(2 ** 31 - 1).default(0),
  })
  .strict()
  .superRefine((m, ctx) => {
    const secagg = m.privacy?.secureAggregation;
    if (secagg !== undefined) {
      if (m.aggregation.strategy !== 'fedavg') ctx.addIssue({ code: 'custom', path: ['privacy', 'secureAggregation'], message: `needs aggregation.strategy "fedavg" (the coordinator sees only the sum), not "${m.aggregation.strategy}"` });
      if (secagg.neighbours >= m.clients.min) ctx.addIssue({ code: 'custom', path: ['privacy', 'secureAggregation', 'neighbours'], message: `must be below clients.min (${m.clients.min}): a clinic's neighbours are other clinics of the round` });
      if (secagg.threshold !== undefined && secagg.threshold > secagg.neighbours) ctx.addIssue({ code: 'custom', path: ['privacy', 'secureAggregation', 'threshold'], message: `must be at most neighbours (${secagg.neighbours})` });
      // At most half would let a coordinator gather both secrets of a clinic from two disjoint neighbour groups.
      if (secagg.threshold !== undefined && secagg.threshold * 2 <= secagg.neighbours) ctx.addIssue({ code: 'custom', path: ['privacy', 'secureAggregation', 'threshold'], message: `must be a strict majority of neighbours (more than ${secagg.neighbours / 2}): with fewer, two disjoint groups of neighbours could rebuild both secrets of one clinic` });
      if (m.privacy?.dp?.placement === 'central') ctx.addIssue({ code: 'custom', path: ['privacy', 'dp', 'placement'], message: 'with secure aggregation the coordinator never sees one update: use "distributed" (each clinic adds its share of the noise) or "local"' });
      // Each clinic's unclipped bit would reach the coordinator beside the masked sum, not inside it.
      if (m.privacy?.dp?.clipping.mode === 'adaptive') ctx.addIssue({ code: 'custom', path: ['privacy', 'dp', 'clipping', 'mode'], message: 'adaptive clipping with secure aggregation is not supported yet: the clipped-fraction count would be visible per clinic (use clipping mode "fixed")' });
    }
    // DP-FedAvg is defined for (unweighted) federated averaging of clipped updates; other
    // strategies would change what the noise protects.
    if (m.privacy?.dp !== undefined && m.aggregation.strategy !== 'fedavg') {
      ctx.addIssue({ code: 'custom', path: ['privacy', 'dp'], message: `needs aggregation.strategy "fedavg" (the noise is calibrated to an average of clipped updates), not "${m.aggregation.strategy}"` });
    }
    // Rounded counts cannot keep a statistics report consistent (count + missing = rows, sums within ranges).
    if (m.privacy?.counts?.disclosure === 'rounded' && m.data.normalization === 'federated-zscore') {
      ctx.addIssue({ code: 'custom', path: ['privacy', 'counts', 'disclosure'], message: '"rounded" cannot be used with data.normalization "federated-zscore" (a statistics report with rounded counts cannot be checked for consistency): use "local-zscore" or "none", or exact counts' });
    }
    // A run is named after its series: a run of one series must not pass for another's (its champion is a release of this name).
    if (m.series !== undefined && m.series.name !== m.name) {
      ctx.addIssue({ code: 'custom', path: ['series', 'name'], message: `must equal the study's name (${m.name}): a series run is named after its series` });
    }
    if (m.clients.min > m.clients.max) {
      ctx.addIssue({ code: 'custom', path: ['clients', 'min'], message: `must be <= clients.max (${m.clients.min} > ${m.clients.max})` });
    }
    if (m.clients.quorum > m.clients.min) {
      ctx.addIssue({ code: 'custom', path: ['clients', 'quorum'], message: `must be <= clients.min (${m.clients.quorum} > ${m.clients.min})` });
    }
    if (m.data.featureSpec === 'flat-table/v1') {
      if (m.data.features === undefined) ctx.addIssue({ code: 'custom', path: ['data', 'features'], message: 'is required for flat-table/v1' });
      if (m.data.cohort !== undefined) ctx.addIssue({ code: 'custom', path: ['data', 'cohort'], message: 'is only for cohort/v1' });
    } else {
      if (m.data.cohort === undefined) ctx.addIssue({ code: 'custom', path: ['data', 'cohort'], message: 'is required for cohort/v1' });
      if (m.data.features !== undefined) ctx.addIssue({ code: 'custom', path: ['data', 'features'], message: 'must be omitted for cohort/v1 (the cohort defines the features)' });
      if (m.data.splitColumn !== undefined) ctx.addIssue({ code: 'custom', path: ['data', 'splitColumn'], message: 'is only for flat-table/v1' });
    }
    try {
      const strategy = createStrategy(strategyConfigOf(m));
      if (m.clients.quorum < strategy.minUpdates) {
        ctx.addIssue({ code: 'custom', path: ['clients', 'quorum'], message: `must be >= ${strategy.minUpdates}, the fewest updates ${strategy.name} can aggregate with these parameters` });
      }
      if (strategy.input === 'all-updates' && m.clients.max > m.aggregation.maxUpdatesHeld) {
        ctx.addIssue({ code: 'custom', path: ['aggregation', 'maxUpdatesHeld'], message: `${strategy.name} holds every update of a round: raise it to clients.max (${m.clients.max}) or lower clients.max` });
      }
    } catch (err) {
      ctx.addIssue({ code: 'custom', path: ['aggregation', 'parameters'], message: (err as Error).message });
    }
    if (m.data.normalizationFallback !== undefined && m.data.normalization !== 'federated-zscore') {
      ctx.addIssue({ code: 'custom', path: ['data', 'normalizationFallback'], message: 'is only for data.normalization federated-zscore' });
    }
    const names = studyFeatureNames(m);
    if (new Set(names).size !== names.length) {
      ctx.addIssue({ code: 'custom', path: ['data', 'features'], message: 'must not repeat a feature' });
    }
    if (m.data.featureSpec === 'flat-table/v1' && names.includes(m.data.label)) {
      ctx.addIssue({ code: 'custom', path: ['data', 'label'], message: 'must not also be a feature' });
    }
    for (const message of modelShapeIssues(m.model.topology, names.length, m.data.featureSpec === 'flat-table/v1' ? 'data.features' : 'data.cohort.features')) {
      ctx.addIssue({ code: 'custom', path: ['model', 'topology'], message });
    }
  });

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Keys of a first layer's declared input shape: with the batch dimension, or without it. */
const INPUT_SHAPE_KEYS: readonly { key: string; withBatch: boolean }[] = [
  { key: 'batch_input_shape', withBatch: true },
  { key: 'batchInputShape', withBatch: true },
  { key: 'input_shape', withBatch: false },
  { key: 'inputShape', withBatch: false },
];

/** Layers whose output has the shape of their input. */
const SHAPE_PRESERVING = new Set(['Dropout', 'Activation', 'BatchNormalization', 'LayerNormalization']);

/**
 * The model's declared input, read from its first layer: the key it was declared under and
 * the dimensions after the batch dimension. Undefined when the topology declares none (the
 * allow-list check reports that).
 */
export function declaredModelInput(topology: Record<string, unknown>): { key: string; dims: unknown[] } | undefined {
  const config = topology['config'];
  const layers = isRecord(config) ? config['layers'] : undefined;
  const first = Array.isArray(layers) ? (layers[0] as unknown) : undefined;
  const lconf = isRecord(first) ? first['config'] : undefined;
  if (!isRecord(lconf)) return undefined;
  for (const { key, withBatch } of INPUT_SHAPE_KEYS) {
    const shape = lconf[key];
    if (Array.isArray(shape)) return { key, dims: withBatch ? shape.slice(1) : shape };
  }
  return undefined;
}

/**
 * What the runtime needs of the model, checked from the manifest alone so a study that cannot
 * train is refused when it starts instead of failing at every clinic: one input of width
 * `features` (each feature is one numeric input — there is no one-hot or other encoding, so
 * the width after encoding is the number of features), and one score per record ([batch, 1]).
 * The output is checked where the manifest says it plainly (the last shape-changing layer is a
 * Dense layer, a Reshape, or a 1-D convolution or pooling); the coordinator builds the model
 * at `study start` and checks the shapes TF.js computes as well.
 */
function modelShapeIssues(topology: Record<string, unknown>, features: number, featuresField: string): string[] {
  const issues: string[] = [];
  const input = declaredModelInput(topology);
  if (input !== undefined) {
    const width = input.dims.at(-1);
    if (input.dims.length !== 1 || typeof width !== 'number' || !Number.isInteger(width)) {
      issues.push(`the model must take one 2-D input [batch, features]; its first layer's ${input.key} is ${JSON.stringify(input.key.startsWith('batch') ? [null, ...input.dims] : input.dims)}`);
    } else if (features > 0 && width !== features) {
      issues.push(
        `model input width ${width} ≠ ${features} features (${featuresField}): the first layer's ${input.key} must end in ${features}, one input per feature (features are numeric columns; there is no one-hot encoding)`,
      );
    }
  }
  const config = topology['config'];
  const layers = isRecord(config) && Array.isArray(config['layers']) ? (config['layers'] as unknown[]) : [];
  const last = [...layers].reverse().find((l) => !(isRecord(l) && typeof l['class_name'] === 'string' && SHAPE_PRESERVING.has(l['class_name'])));
  if (isRecord(last) && isRecord(last['config'])) {
    const lc = last['config'];
    const produces = (what: string): void => void issues.push(`the model must produce one score per record ([batch, 1]); its last ${last['class_name'] as string} layer produces ${what}`);
    if (last['class_name'] === 'Dense' && typeof lc['units'] === 'number' && lc['units'] !== 1) produces(`${lc['units']} units`);
    const target = lc['target_shape'] ?? lc['targetShape'];
    if (last['class_name'] === 'Reshape' && Array.isArray(target) && !(target.length === 1 && target[0] === 1)) produces(`shape ${JSON.stringify([null, ...target])}`);
    if (last['class_name'] === 'Conv1D' || last['class_name'] === 'MaxPooling1D') produces('a 3-D output [batch, steps, channels]');
  }
  return issues;
}

export type StudyManifest = z.output<typeof studyManifestSchema>;

/** The manifest's aggregation strategy as a validated strategy configuration. */
export function strategyConfigOf(m: Pick<StudyManifest, 'aggregation'>): StrategyConfig {
  return validateStrategyConfig({ name: m.aggregation.strategy, ...m.aggregation.parameters });
}

/** The model's input columns, in order: the listed features, or the cohort's feature names. */
export function studyFeatureNames(m: { data: { features?: string[] | undefined; cohort?: CohortSpec | undefined } }): string[] {
  return m.data.features ?? m.data.cohort?.features.map((f) => f.name) ?? [];
}
export type StudyManifestInput = z.input<typeof studyManifestSchema>;

function formatIssues(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.length > 0 ? i.path.join('.') : '(root)'}: ${i.message}`).join('; ');
}

/** Validates a parsed manifest (schema and model allow-list) and applies defaults. */
export function validateManifest(value: unknown): StudyManifest {
  const result = studyManifestSchema.safeParse(value);
  if (!result.success) {
    const first = result.error.issues[0]?.path;
    const path = first === undefined || first.length === 0 ? undefined : first.join('.');
    throw new FedlhsError('MANIFEST_INVALID', `invalid study manifest: ${formatIssues(result.error)}`, { details: { path } });
  }
  try {
    validateTopology(result.data.model.topology);
  } catch (err) {
    if (!isFedlhsError(err, 'MANIFEST_INVALID')) throw err;
    throw new FedlhsError('MANIFEST_INVALID', `invalid study manifest: ${err.message}`, { details: err.details, cause: err });
  }
  return result.data;
}

/** Parses manifest text (JSON, or YAML when `format` is 'yaml' or the text is not JSON) and validates it. */
export function parseManifest(text: string, format: 'json' | 'yaml' | 'auto' = 'auto'): StudyManifest {
  let value: unknown;
  try {
    if (format === 'json' || (format === 'auto' && /^\s*[{[]/.test(text))) value = JSON.parse(text);
    else value = parseYaml(text);
  } catch (err) {
    throw new FedlhsError('MANIFEST_INVALID', `study manifest is not valid ${format === 'auto' ? 'JSON or YAML' : format.toUpperCase()}: ${(err as Error).message}`, { cause: err });
  }
  return validateManifest(value);
}

/** RFC 8785 canonical JSON of a validated manifest: the exact text that is hashed and sent to clinics. */
export function canonicalManifestJson(manifest: StudyManifest): string {
  const text = canonicalize(manifest);
  if (text === undefined) throw new FedlhsError('INTERNAL', 'manifest could not be canonicalised');
  return text;
}

/** Lowercase hex SHA-256 of the canonical JSON: the hash clinics approve. */
export function manifestHash(manifest: StudyManifest): string {
  return sha256Hex(canonicalManifestJson(manifest));
}

/** Checks that `json` is canonical manifest JSON with the given hash, and returns the manifest. */
export function verifyManifestJson(json: string, expectedHash: string): StudyManifest {
  const actual = sha256Hex(json);
  if (actual !== expectedHash) {
    throw new FedlhsError('DATA_LOSS', `manifest hash mismatch: announced ${expectedHash}, content hashes to ${actual}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch (err) {
    throw new FedlhsError('MANIFEST_INVALID', `manifest is not JSON: ${(err as Error).message}`, { cause: err });
  }
  const manifest = validateManifest(parsed);
  if (canonicalManifestJson(manifest) !== json) {
    throw new FedlhsError('MANIFEST_INVALID', 'manifest JSON is not in canonical form (RFC 8785 with defaults applied)');
  }
  return manifest;
}

export interface ManifestChange {
  path: string;
  before: unknown;
  after: unknown;
}

/** Lists what differs between two manifests, by JSON path, for a clinic operator's review. */
export function diffManifests(before: unknown, after: unknown, path = ''): ManifestChange[] {
  const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (isObj(before) && isObj(after)) {
    const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
    return keys.flatMap((k) => diffManifests(before[k], after[k], path === '' ? k : `${path}.${k}`));
  }
  if (Array.isArray(before) && Array.isArray(after) && before.length === after.length) {
    return before.flatMap((v, i) => diffManifests(v, after[i], `${path}[${i}]`));
  }
  return canonicalize(before) === canonicalize(after) ? [] : [{ path: path === '' ? '(root)' : path, before, after }];
}
