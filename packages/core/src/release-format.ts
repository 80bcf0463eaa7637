import { z } from 'zod';

/**
 * The release bundle (issue 12; proto federation.proto "Releases"; README "Release format"):
 * the file names, the in-toto predicate, and `release.json`, the descriptor every agent reads
 * before it deploys or scores. Pure data: building is in the coordinator (releases/), checking
 * in release-verify.ts, scoring in the agent.
 */

/** The files of a bundle, in the order they are listed and signed. */
export const RELEASE_FILES = ['manifest.json', 'model.json', 'weights.bin', 'release.json', 'model-card.md'] as const;
export type ReleaseFileName = (typeof RELEASE_FILES)[number];

/** The in-toto predicateType of a fedlhs release Statement. */
export const RELEASE_PREDICATE_TYPE = 'https://fedlhs.dev/release/v1';
/** release.json's `format`. */
export const RELEASE_FORMAT = 'fedlhs.release/v1';

/** The signed predicate: which release the subjects are. */
export interface ReleasePredicate {
  studyName: string;
  version: number;
  studyId: string;
  round: number;
  manifestSha256: string;
  /** ISO 8601 UTC. */
  createdAt: string;
}

/** How a risk model did on a set of patients (proto Performance), as the agent computes it. */
export interface Performance {
  numExamples: number;
  positives: number;
  auc?: number | undefined;
  /** DeLong standard error of `auc`. */
  aucStandardError?: number | undefined;
  brier: number;
  calibrationSlope?: number | undefined;
  calibrationIntercept?: number | undefined;
  /** 10 equal-width bins of predicted risk, or empty. */
  calibration: { count: number; predictedSum: number; observed: number }[];
}

const num = z.number().finite();
const interval = z.tuple([num, num]);

/** A published figure set: a site's or the pooled one, small cells already withheld (null). */
export const publishedPerformanceSchema = z.object({
  numExamples: z.number().int().min(0),
  /** null: withheld (fewer than minCellCount cases or non-cases). */
  positives: z.number().int().min(0).nullable(),
  auc: num.nullable(),
  /** 95 % interval of auc: ±1.96 DeLong standard errors (pooled: of the example-weighted mean, sites independent), clipped to [0, 1]. */
  aucInterval: interval.nullable(),
  brier: num.nullable(),
  calibrationSlope: num.nullable(),
  calibrationIntercept: num.nullable(),
  /** Pooled reliability table; a bin is null when withheld: under minCellCount patients, cases or non-cases, or withheld with it so that totals minus the shown bins give no small bin away (all null when positives is withheld). */
  calibration: z.array(z.object({ lower: num, upper: num, count: z.number().int(), meanPredicted: num, observedRate: num }).nullable()),
});
export type PublishedPerformance = z.infer<typeof publishedPerformanceSchema>;

const partSchema = z.object({
  /** Example-weighted over the sites that reported; null when under minCellCount examples in all. */
  pooled: publishedPerformanceSchema.nullable(),
  sites: z.array(z.object({ site: z.string(), performance: publishedPerformanceSchema })),
  /** Sites whose figures count only in the pooled value (small cells). */
  withheldSites: z.number().int().min(0),
  /** Sites that evaluated the round but sent no figures for this part (e.g. a third-party agent). */
  sitesWithoutFigures: z.array(z.string()),
});

/**
 * `excluded` (federated-zscore with data.normalizationFallback 'exclude'): the model was trained
 * with this feature as the constant 0 whatever its value (core applyNormalization honours it).
 */
const normalizationFeature = z.object({ name: z.string(), mean: num, std: num.positive(), impute: num, excluded: z.boolean().optional() });

/** release.json. The agent validates it with this schema before it keeps a release. */
export const releaseDescriptorSchema = z.object({
  format: z.literal(RELEASE_FORMAT),
  study: z.object({ name: z.string(), id: z.string(), manifestSha256: z.string().regex(/^[0-9a-f]{64}$/), description: z.string() }),
  version: z.number().int().min(1),
  round: z.number().int().min(0),
  createdAt: z.string(),
  selection: z.object({
    rule: z.enum(['best-validation-auc', 'best-validation-loss', 'last-round']),
    /** Why this round, in words ("best validation AUC 0.781 of 20 rounds; ties to the later round"). */
    reason: z.string(),
    /** Loud notes about the choice (e.g. no round had a validation AUC, so the last round was released). */
    warnings: z.array(z.string()),
    candidates: z.array(z.object({ round: z.number().int(), validationAuc: num.nullable(), validationLoss: num.nullable(), evaluatedSites: z.number().int() })),
  }),
  model: z.object({
    format: z.literal('tfjs-layers'),
    /** Feature count the model takes, in `features.names` order. */
    inputs: z.number().int().min(1),
    tensors: z.array(z.object({ name: z.string(), shape: z.array(z.number().int().min(0)) })),
    weightsSha256: z.string().regex(/^[0-9a-f]{64}$/),
    /** The model's output: the predicted risk of the outcome (sigmoid probability). */
    output: z.literal('risk'),
  }),
  features: z.object({
    featureSpec: z.enum(['flat-table/v1', 'cohort/v1']),
    names: z.array(z.string()).min(1),
    label: z.string(),
    /** What the model needs from a clinic's data, in words (one line per feature). */
    needs: z.array(z.string()),
  }),
  normalization: z.object({
    method: z.enum(['none', 'federated-zscore', 'local-zscore']),
    /** federated-zscore: the study's parameters. Otherwise empty: the agent derives them from its own training split (`note` says how). */
    features: z.array(normalizationFeature),
    note: z.string(),
  }),
  riskBands: z.array(z.object({ name: z.string(), upTo: num })).min(1),
  metrics: z.object({ validation: partSchema, test: partSchema, minCellCount: z.number().int().min(0) }),
  dataSummary: z.object({
    sites: z.number().int().min(0),
    sitesThatTrained: z.number().int().min(0),
    /** Examples per site in the released round's evaluation (null: withheld, fewer than minCellCount). */
    perSite: z.array(z.object({ site: z.string(), validationExamples: z.number().int().nullable(), testExamples: z.number().int().nullable() })),
    /** Pooled feature statistics from the study's statistics phase (absent without one). */
    features: z.array(z.object({ name: z.string(), mean: num.nullable(), std: num.nullable() })),
    note: z.string(),
  }),
  lineage: z.object({
    studyId: z.string(),
    round: z.number().int(),
    checkpointSha256: z.string().regex(/^[0-9a-f]{64}$/),
    parent: z.object({ version: z.number().int(), studyId: z.string(), round: z.number().int() }).nullable(),
    /** Fingerprint of the release key that signed it. */
    signer: z.string(),
  }),
  modelCard: z.object({
    intendedUse: z.string(),
    outcome: z.string(),
    population: z.string(),
    limitations: z.array(z.string()),
  }),
});
export type ReleaseDescriptor = z.infer<typeof releaseDescriptorSchema>;
