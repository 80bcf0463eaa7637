import { FedlhsError } from './errors.js';

/**
 * The maxima and character sets of everything a node sends (issue 11): one table, used by the
 * coordinator at its gRPC edge (refuse before anything reaches the domain or the store) and by
 * agents on what they send (stay within it). Pure: no I/O.
 *
 * Character sets:
 * - `id`: ASCII letters, digits, ".", "_", ":" and "-" (study ids "<manifest name>-<6 hex>",
 *   task ids "task_<uuid>", node ids "node_<16 hex>"). May be empty (the domain answers an
 *   empty id as unknown).
 * - `sha256-hex`: exactly 64 lowercase hex digits.
 * - `token`: ASCII letters, digits, ".", "_" and "-" (join tokens "fjt_…").
 * - `text`: Unicode text without control characters: no C0 (U+0000–U+001F, so no tab or
 *   newline either), no DEL (U+007F), no C1 (U+0080–U+009F), no line or paragraph separator
 *   (U+2028, U+2029), no bidirectional embedding, override or isolate (U+202A–U+202E,
 *   U+2066–U+2069), no unpaired surrogate. Lengths count Unicode code points.
 *
 * Lengths of `id`, `sha256-hex` and `token` are ASCII characters; of `text`, code points.
 */
export type WireCharset = 'id' | 'sha256-hex' | 'token' | 'text';

/** One string field's bound. */
export interface StringLimit {
  readonly max: number;
  /** Least length; 0 when absent. */
  readonly min?: number;
  readonly charset: WireCharset;
}

const id = { max: 128, charset: 'id' } as const satisfies StringLimit;
const hash = { min: 64, max: 64, charset: 'sha256-hex' } as const satisfies StringLimit;
/** Short labels: agent version, backend, platform, capability, phase. */
const label = { max: 128, charset: 'text' } as const satisfies StringLimit;
/** Human text meant for operators (readiness detail, task reason). */
const human = { max: 1000, charset: 'text' } as const satisfies StringLimit;
/** Tensor and feature names (layer names of a topology, table column names). */
const name = { min: 1, max: 256, charset: 'text' } as const satisfies StringLimit;

/**
 * Every string field a node sends, by "Message.field" (proto names). Repeated fields give the
 * bound of each element; their counts are in `WIRE_COUNTS`.
 */
export const WIRE_STRINGS = {
  'AgentInfo.agent_version': label,
  'AgentInfo.training_backend': label,
  'AgentInfo.platform': label,
  'Hello.active_task_ids': id,
  'Hello.capabilities': { max: 64, charset: 'text' },
  'StudyReadiness.study_id': id,
  'StudyReadiness.manifest_sha256': hash,
  'StudyReadiness.detail': human,
  'TaskUpdate.task_id': id,
  'TaskUpdate.reason': human,
  'TaskUpdate.phase': { max: 32, charset: 'text' },
  'UpdateHeader.task_id': id,
  'UpdateHeader.study_id': id,
  'UpdateHeader.node_id': id,
  'TensorSpec.name': name,
  'StatisticsReport.task_id': id,
  'StatisticsReport.study_id': id,
  'FeatureStatistics.name': name,
  'EvaluationReport.task_id': id,
  'EvaluationReport.study_id': id,
  'DownloadModelRequest.task_id': id,
  'CommittedModelRef.study_id': id,
  'EnrolRequest.join_token': { max: 256, charset: 'token' },
  'EnrolRequest.site_name': { max: 64, charset: 'token' },
} as const satisfies Record<string, StringLimit>;

export type WireStringField = keyof typeof WIRE_STRINGS;

/** The most elements of each repeated field a node sends (and of byte fields, their bytes). */
export const WIRE_COUNTS = {
  'Hello.active_task_ids': 64,
  'Hello.capabilities': 32,
  /** A model's tensors (two per Dense layer: 2048 layers). */
  'TensorBundleHeader.tensors': 4096,
  /** Dimensions of one tensor. */
  'TensorSpec.shape': 8,
  /** Bytes of a SHA-256 digest. */
  'TensorBundleHeader.sha256': 32,
  'UpdateHeader.base_model_sha256': 32,
  /** Features of a study (manifest data.features at most 10 000). */
  'StatisticsReport.features': 10_000,
  /** Histogram cells of one feature (the coordinator derives 20 or 2). */
  'FeatureStatistics.histogram': 64,
} as const satisfies Record<string, number>;

export type WireCountField = keyof typeof WIRE_COUNTS;

/** Bounds of the numbers a node sends whose type alone allows nonsense. */
export const WIRE_NUMBERS = {
  /** Epochs of a task (manifest training.localEpochs at most 1000; steps-based training may report more). */
  'TaskUpdate.epoch': { min: 0, max: 1_000_000 },
  'TaskUpdate.epochs': { min: 0, max: 1_000_000 },
  'TaskUpdate.fraction': { min: 0, max: 1 },
} as const satisfies Record<string, { min: number; max: number }>;

export type WireNumberField = keyof typeof WIRE_NUMBERS;

/** The longest excerpt of an offending value an error message quotes. */
const QUOTE_MAX = 32;

const ID = /^[A-Za-z0-9._:-]*$/;
const TOKEN = /^[A-Za-z0-9._-]*$/;
const HEX64 = /^[0-9a-f]{64}$/;
/** Code points `text` refuses (see WireCharset); the `u` flag makes a lone surrogate its own match. */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const TEXT_REFUSED = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]|\p{Surrogate}/u;
// eslint-disable-next-line no-control-regex -- as above
const TEXT_REFUSED_ALL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]|\p{Surrogate}/gu;

/** Length in Unicode code points, counting only as far as `limit + 1`. */
function codePoints(s: string, limit: number): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
    if (++n > limit) return n;
  }
  return n;
}

/** A short, printable excerpt of an offending value for an error message (never the whole value). */
export function quoteExcerpt(value: string, max = QUOTE_MAX): string {
  const head = value.length > max ? value.slice(0, max) : value;
  const shown = JSON.stringify(head.replace(TEXT_REFUSED_ALL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`));
  return value.length > max ? `${shown}…` : shown;
}

function invalid(field: string, what: string): FedlhsError {
  return new FedlhsError('INVALID_ARGUMENT', `field ${field}: ${what}`, { details: { field } });
}

/** What is wrong with `value` under `limit`, or undefined. Cheap on huge values: length first. */
export function stringViolation(value: string, limit: StringLimit): string | undefined {
  const min = limit.min ?? 0;
  if (limit.charset === 'text') {
    // A code point is at most two UTF-16 units: a string this long is over the limit whatever it holds.
    if (value.length > 2 * limit.max) return `longer than ${limit.max} characters (${value.length} UTF-16 units)`;
    const n = codePoints(value, limit.max);
    if (n > limit.max) return `longer than ${limit.max} characters`;
    if (n < min) return min === 1 ? 'must not be empty' : `shorter than ${min} characters`;
    const bad = TEXT_REFUSED.exec(value);
    if (bad !== null) {
      const cp = bad[0].codePointAt(0)!;
      return `control character U+${cp.toString(16).toUpperCase().padStart(4, '0')} at index ${bad.index} (text may not hold control, line-separator or bidi-override characters)`;
    }
    return undefined;
  }
  if (value.length > limit.max) return `longer than ${limit.max} characters (${value.length})`;
  if (value.length < min) return min === limit.max ? `must be exactly ${min} characters, got ${value.length}` : `shorter than ${min} characters`;
  const ok = limit.charset === 'id' ? ID.test(value) : limit.charset === 'token' ? TOKEN.test(value) : HEX64.test(value);
  if (ok) return undefined;
  const set = limit.charset === 'id' ? 'ASCII letters, digits, ".", "_", ":" and "-"' : limit.charset === 'token' ? 'ASCII letters, digits, ".", "_" and "-"' : '64 lowercase hex digits';
  return `must be ${set}, got ${quoteExcerpt(value)}`;
}

/**
 * Throws FedlhsError('INVALID_ARGUMENT', 'field X: …', { details: { field } }) if `value` breaks
 * the bound of `field` (WIRE_STRINGS). `path` names the element when it is not the field itself
 * (e.g. "TensorBundleHeader.tensors[3].name").
 */
export function checkWireString(field: WireStringField, value: string, path: string = field): void {
  const v = stringViolation(value, WIRE_STRINGS[field]);
  if (v !== undefined) throw invalid(path, v);
}

/** Throws INVALID_ARGUMENT if a repeated field (or byte field) has more elements than WIRE_COUNTS allows. */
export function checkWireCount(field: WireCountField, count: number, path: string = field): void {
  const max = WIRE_COUNTS[field];
  if (count > max) throw invalid(path, `more than ${max} ${field.endsWith('sha256') ? 'bytes' : 'elements'} (${count})`);
}

/** Throws INVALID_ARGUMENT if a number is not finite or outside WIRE_NUMBERS' range. */
export function checkWireNumber(field: WireNumberField, value: number, path: string = field): void {
  const { min, max } = WIRE_NUMBERS[field];
  if (!Number.isFinite(value) || value < min || value > max) throw invalid(path, `must be a number from ${min} to ${max}, got ${String(value).slice(0, QUOTE_MAX)}`);
}

/** Throws INVALID_ARGUMENT if `value` (a proto enum as the loader gives it: a name) is not one of `names`. */
export function checkWireEnum(field: string, value: unknown, names: readonly string[]): void {
  if (typeof value !== 'string' || !names.includes(value)) {
    throw invalid(field, `must be one of ${names.join(', ')}, got ${typeof value === 'string' ? quoteExcerpt(value) : String(value).slice(0, QUOTE_MAX)}`);
  }
}

/**
 * Human text made fit for a `text` field of at most `max` code points: control characters
 * dropped (whitespace ones become spaces), whitespace collapsed and trimmed, cut with an
 * ellipsis. What agents apply to every detail and reason they send.
 */
export function sanitizeWireText(text: string, max: number = WIRE_STRINGS['StudyReadiness.detail'].max): string {
  // eslint-disable-next-line no-control-regex -- whitespace controls become spaces before the rest are dropped
  const spaced = text.replace(/[\t\n\v\f\r\u0085\u2028\u2029]/g, ' ');
  const line = spaced.replace(TEXT_REFUSED_ALL, '').replace(/\s+/g, ' ').trim();
  if (codePoints(line, max) <= max) return line;
  const cps = Array.from(line.slice(0, 2 * max)).slice(0, max - 1);
  return `${cps.join('').trimEnd()}…`;
}
