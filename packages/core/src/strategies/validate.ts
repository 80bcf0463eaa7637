import { FedlhsError } from '../errors.js';
import { elementCount, type Tensor } from '../tensors.js';
import { STRATEGY_NAMES, STRATEGY_PARAMETERS, type StrategyConfig, type StrategyName } from './config.js';
import { hasNonFinite } from './column-sort.js';
import type { ClientUpdate } from './types.js';

function invalid(message: string): FedlhsError {
  return new FedlhsError('INVALID_ARGUMENT', message);
}

/** A short rendering of an unexpected value for messages. */
function show(value: unknown): string {
  if (typeof value === 'number') return String(value);
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (value === null || value === undefined || typeof value === 'boolean') return String(value);
  return Array.isArray(value) ? 'an array' : `a ${typeof value}`;
}

/**
 * Checks an untrusted strategy configuration (e.g. `{ name: manifest.aggregation.strategy,
 * ...manifest.aggregation.parameters }`) and returns a copy holding exactly the given
 * parameters (defaults are filled in by `createStrategy`). Throws FedlhsError INVALID_ARGUMENT
 * naming the strategy and the parameter: an unknown strategy or parameter, a missing required
 * parameter, a non-number, or a value out of range, e.g. `fedadam: beta1 must be in [0, 1), got 1`.
 */
export function validateStrategyConfig(value: unknown): StrategyConfig {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalid(`strategy config must be an object with a "name", got ${show(value)}`);
  }
  const given = value as Record<string, unknown>;
  const name = given['name'];
  if (typeof name !== 'string' || !(STRATEGY_NAMES as readonly string[]).includes(name)) {
    throw invalid(`unknown strategy ${show(name)} (expected one of ${STRATEGY_NAMES.join(', ')})`);
  }
  const rules = STRATEGY_PARAMETERS[name as StrategyName];
  const accepted = Object.keys(rules);
  for (const key of Object.keys(given)) {
    if (key !== 'name' && !Object.hasOwn(rules, key)) {
      const list = accepted.length === 0 ? 'takes no parameters' : `accepts ${accepted.join(', ')}`;
      throw invalid(`${name}: unknown parameter "${key}" (${name} ${list})`);
    }
  }
  const out: Record<string, unknown> = { name };
  for (const [param, rule] of Object.entries(rules)) {
    const v = given[param];
    if (v === undefined) {
      if (rule.required === true) throw invalid(`${name}: ${param} is required (${rule.expected})`);
      continue;
    }
    if (typeof v !== 'number' || !rule.test(v)) throw invalid(`${name}: ${param} must be ${rule.expected}, got ${show(v)}`);
    out[param] = v;
  }
  return out as unknown as StrategyConfig;
}

/** Index of the first NaN or ±Infinity in `data`, or -1. */
export function findNonFinite(data: Float32Array): number {
  const fast = hasNonFinite(data);
  if (fast === false) return -1;
  if (fast === true) {
    for (let j = 0; j < data.length; j++) if (data[j]! - data[j]! !== 0) return j;
  }
  // v − v is 0 for every finite v and NaN for NaN and ±Infinity, so the sums below stay 0
  // exactly when every value is finite; eight values per step, in two independent chains.
  const n = data.length;
  let s = 0;
  let r = 0;
  let i = 0;
  for (; i + 7 < n; i += 8) {
    const a = data[i]!, b = data[i + 1]!, c = data[i + 2]!, d = data[i + 3]!;
    const e = data[i + 4]!, f = data[i + 5]!, g = data[i + 6]!, h = data[i + 7]!;
    s += a - a + (b - b) + (c - c + (d - d));
    r += e - e + (f - f) + (g - g + (h - h));
  }
  for (; i < n; i++) s += data[i]! - data[i]!;
  if (s + r === 0) return -1;
  for (let j = 0; j < n; j++) if (data[j]! - data[j]! !== 0) return j;
  return -1;
}

/** Throws the INVALID_ARGUMENT for the first non-finite value among the updates, if any. */
export function assertUpdatesFinite(name: StrategyName, updates: readonly ClientUpdate[], tensorIndex?: number): void {
  updates.forEach((u, k) => {
    u.weights.forEach((t, ti) => {
      if (tensorIndex !== undefined && ti !== tensorIndex) return;
      const i = findNonFinite(t.data);
      if (i >= 0) throw invalid(`${name}: update ${k} tensor ${ti} has a non-finite value (${t.data[i]}) at index ${i}`);
    });
  });
}

/** `[2,3]` */
export function shapeText(shape: readonly number[]): string {
  return `[${shape.join(',')}]`;
}

/** Checks one tensor is well formed: a shape of integers ≥ 0 and a Float32Array of matching length. */
export function checkTensor(label: string, t: Tensor | undefined): void {
  if (typeof t !== 'object' || t === null || !Array.isArray(t.shape) || !(t.data instanceof Float32Array)) {
    throw invalid(`${label} must be a { shape: number[], data: Float32Array }`);
  }
  if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw invalid(`${label} has an invalid shape ${shapeText(t.shape)}`);
  const n = elementCount(t.shape);
  if (t.data.length !== n) throw invalid(`${label} has ${t.data.length} values, its shape ${shapeText(t.shape)} needs ${n}`);
}

/** True if two shapes are equal. */
export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Checks `tensors` has the model's tensor count and shapes (`what` names it in messages). */
export function checkLikeModel(name: StrategyName, what: string, tensors: readonly Tensor[], model: readonly Tensor[]): void {
  if (!Array.isArray(tensors)) throw invalid(`${name}: ${what} must be an array of tensors`);
  if (tensors.length !== model.length) throw invalid(`${name}: ${what} has ${tensors.length} tensors, the model has ${model.length}`);
  tensors.forEach((t, i) => {
    checkTensor(`${name}: ${what} tensor ${i}`, t);
    const expected = model[i]!.shape;
    if (!sameShape(t.shape, expected)) {
      throw invalid(`${name}: ${what} tensor ${i} has shape ${shapeText(t.shape)}, the model's is ${shapeText(expected)}`);
    }
  });
}

/** How `aggregate` checks its arguments. */
export interface AggregateChecks {
  readonly minUpdates: number;
  /** Message when 0 < n < minUpdates; default `<name>: needs at least <min> updates, got <n>`. */
  readonly tooFew?: (n: number) => string;
  /** Scan every update value for NaN/±Infinity now (strategies that detect them while summing pass false). */
  readonly scanFinite: boolean;
  /** Also require the global model's values to be finite (strategies that read them). */
  readonly globalFinite: boolean;
}

/** Validates the arguments of `Strategy.aggregate`; throws INVALID_ARGUMENT naming what is wrong. */
export function checkAggregateInputs(
  name: StrategyName,
  global: readonly Tensor[],
  updates: readonly ClientUpdate[],
  round: number,
  checks: AggregateChecks,
): void {
  if (!Number.isSafeInteger(round) || round < 0) throw invalid(`${name}: round must be an integer ≥ 0, got ${show(round)}`);
  if (!Array.isArray(global)) throw invalid(`${name}: global must be an array of tensors`);
  global.forEach((t, i) => checkTensor(`${name}: global tensor ${i}`, t));
  if (!Array.isArray(updates) || updates.length === 0) throw invalid(`${name}: no updates to aggregate`);
  if (updates.length < checks.minUpdates) {
    throw invalid(checks.tooFew?.(updates.length) ?? `${name}: needs at least ${checks.minUpdates} updates, got ${updates.length}`);
  }
  updates.forEach((u, k) => {
    if (typeof u !== 'object' || u === null) throw invalid(`${name}: update ${k} must be a { weights, numExamples }`);
    const n = u.numExamples;
    if (typeof n !== 'number' || !(n > 0) || !Number.isFinite(n)) {
      throw invalid(`${name}: update ${k} numExamples must be a positive finite number, got ${show(n)}`);
    }
    checkLikeModel(name, `update ${k}`, u.weights, global);
  });
  if (checks.globalFinite) {
    global.forEach((t, i) => {
      const j = findNonFinite(t.data);
      if (j >= 0) throw invalid(`${name}: global tensor ${i} has a non-finite value (${t.data[j]}) at index ${j}`);
    });
  }
  if (checks.scanFinite) assertUpdatesFinite(name, updates);
}

/** A fresh tensor with a copy of `shape` and the given data. */
export function tensorOf(shape: readonly number[], data: Float32Array): Tensor {
  return { shape: [...shape], data };
}

/** Rejects any non-empty state: these strategies have none. */
export function importNoState(name: StrategyName, state: Tensor[]): void {
  if (!Array.isArray(state) || state.length !== 0) {
    throw invalid(`${name}: has no server state to import, got ${Array.isArray(state) ? `${state.length} tensors` : 'a non-array'}`);
  }
}
