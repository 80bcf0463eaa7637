import { createReadStream } from 'node:fs';
import { basename } from 'node:path';
import { parse } from 'csv-parse';
import { FedlhsError, isHoldout } from '@fedlhs/core';
import type { TextEncoding } from './events.js';

/** The feature spec a flat table satisfies: one row per example, numeric feature columns, a 0/1 label. */
export const FLAT_TABLE_SPEC = 'flat-table/v1';

/** Which columns a study needs from a table. */
export interface TableRequest {
  features: readonly string[];
  label: string;
  /** Column whose value keys the deterministic split (a pseudonymous record id); row number if absent. */
  keyColumn?: string | undefined;
  /** Column whose value "test" puts a row in the hold-out split (instead of the hashed split). */
  splitColumn?: string | undefined;
  /** Text encoding of the file (default UTF-8). */
  encoding?: TextEncoding | undefined;
  /**
   * 'required' (default, training and evaluation): rows without a 0/1 label are skipped and
   * counted. 'none' (scoring): the label column may be absent and every row is kept, its label
   * NaN (a 0/1 label present is kept; anything else in it is still counted as not binary).
   */
  labels?: 'required' | 'none' | undefined;
}

/** Cells a flat table left without a usable value, per feature (kept as missing, imputed later). */
export interface FeatureGaps {
  /** Empty, "NA", "?" or "." cells, per feature. */
  missing: Record<string, number>;
  /** Cells that are not a finite decimal number, per feature (also kept as missing). */
  nonNumeric: Record<string, number>;
}

/** A numeric design matrix read from local data. Never leaves the clinic. */
export interface Dataset {
  features: readonly string[];
  /** Row-major rows × features. */
  x: Float32Array;
  /** 0/1 labels, one per row. */
  y: Float32Array;
  /** Split keys, one per row (record ids or row numbers). Stay inside the agent. */
  keys: string[];
  /** Rows read and kept. */
  rows: number;
  /** Rows skipped, counted by reason (no values, never record contents). */
  skipped: Record<string, number>;
  /** 1 for rows a split column puts in the hold-out set; absent when the split is hashed. */
  holdout?: Uint8Array | undefined;
  /** Flat tables: feature cells kept as missing (NaN), per feature. */
  gaps?: FeatureGaps | undefined;
}

const MISSING_CELLS = new Set(['', '?', '.', 'NA', 'N/A', 'NAN', 'NULL']);

/**
 * Streams a CSV file with a header row and keeps the requested columns. A missing feature cell
 * (empty, NA, N/A, NaN, NULL, ?, .) or one that is not a number is kept as missing (NaN, imputed
 * with the mean when the data are prepared) and counted per feature in `gaps`; a row whose label
 * is missing or not 0/1 is skipped and counted by reason. A large export never sits in memory
 * as text and one bad row never stops a clinic.
 */
export async function readFlatTable(path: string, request: TableRequest): Promise<Dataset> {
  const parser = createReadStream(path).pipe(
    parse({ columns: false, trim: true, skip_empty_lines: true, relax_column_count: true, bom: true, encoding: request.encoding === 'latin1' ? 'latin1' : 'utf8' }),
  );
  const gaps: FeatureGaps = { missing: {}, nonNumeric: {} };
  const gap = (into: Record<string, number>, feature: string): void => {
    into[feature] = (into[feature] ?? 0) + 1;
  };
  let featureIdx: number[] | undefined;
  let labelIdx = -1;
  let keyIdx = -1;
  let splitIdx = -1;
  const holdout: number[] = [];
  const values: number[] = [];
  const labels: number[] = [];
  const keys: string[] = [];
  const skipped: Record<string, number> = {};
  const skip = (reason: string): void => {
    skipped[reason] = (skipped[reason] ?? 0) + 1;
  };
  let rowNumber = 0;
  try {
    for await (const record of parser as AsyncIterable<string[]>) {
      if (featureIdx === undefined) {
        const header = record.map((h) => h.trim());
        const scoring = request.labels === 'none';
        const missing = [...request.features, ...(scoring ? [] : [request.label])].filter((c) => !header.includes(c));
        if (request.keyColumn !== undefined && !header.includes(request.keyColumn)) missing.push(request.keyColumn);
        if (request.splitColumn !== undefined && !header.includes(request.splitColumn)) missing.push(request.splitColumn);
        if (missing.length > 0) {
          throw new FedlhsError('FEATURE_SPEC_UNSUPPORTED', `${basename(path)}: missing column(s) ${missing.map((m) => JSON.stringify(m)).join(', ')}`, { details: { missing } });
        }
        featureIdx = request.features.map((f) => header.indexOf(f));
        labelIdx = header.indexOf(request.label);
        keyIdx = request.keyColumn === undefined ? -1 : header.indexOf(request.keyColumn);
        splitIdx = request.splitColumn === undefined ? -1 : header.indexOf(request.splitColumn);
        continue;
      }
      rowNumber++;
      const labelCell = record[labelIdx];
      const parsed = labelIdx < 0 || labelCell === undefined || MISSING_CELLS.has(labelCell.toUpperCase()) ? undefined : Number(labelCell);
      const label = parsed === undefined && request.labels === 'none' ? Number.NaN : parsed;
      if (label === undefined) {
        skip('label_missing');
        continue;
      }
      if (label !== 0 && label !== 1 && !Number.isNaN(label)) {
        skip('label_not_binary');
        continue;
      }
      if (record.some((cell) => cell.includes('\uFFFD'))) {
        skip('bytes_not_valid_utf8 (if the file is Latin-1, set data.encoding to latin1)');
        continue;
      }
      const row: number[] = [];
      featureIdx.forEach((i, j) => {
        const cell = record[i];
        const name = request.features[j]!;
        if (cell === undefined || MISSING_CELLS.has(cell.toUpperCase())) {
          gap(gaps.missing, name);
          row.push(Number.NaN);
          return;
        }
        const v = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/.test(cell) ? Number(cell) : Number.NaN;
        if (!Number.isFinite(v)) gap(gaps.nonNumeric, name);
        row.push(Number.isFinite(v) ? v : Number.NaN);
      });
      values.push(...row);
      labels.push(label);
      keys.push(keyIdx >= 0 ? (record[keyIdx] ?? String(rowNumber)) : String(rowNumber));
      if (splitIdx >= 0) holdout.push(record[splitIdx] === 'test' ? 1 : 0);
    }
  } catch (err) {
    if (err instanceof FedlhsError) throw err;
    // csv-parse quotes cell contents in its messages: say where, never what.
    const line = (err as { lines?: number }).lines;
    const code = (err as { code?: string }).code ?? 'parse error';
    throw new FedlhsError('DATA_INVALID', `${basename(path)}: cannot read CSV (${code}${line === undefined ? '' : ` at line ${line}`})`, { cause: err, details: { file: basename(path), line } });
  }
  if (featureIdx === undefined) {
    throw new FedlhsError('DATA_INVALID', `${basename(path)}: file is empty (no header row)`, { details: { file: basename(path) } });
  }
  return {
    features: request.features, x: Float32Array.from(values), y: Float32Array.from(labels), keys, rows: labels.length, skipped,
    holdout: splitIdx >= 0 ? Uint8Array.from(holdout) : undefined,
    gaps,
  };
}

/** Train and hold-out parts of a dataset. */
export interface SplitDataset {
  train: Dataset;
  holdout: Dataset;
}

/**
 * Splits rows deterministically: by the dataset's split column when it has one, else by key
 * with core's `isHoldout` (same seed → same split, whatever the row order).
 */
export function splitDataset(data: Dataset, seed: number, holdoutFraction: number): SplitDataset {
  const d = data.features.length;
  const pick = (wantHoldout: boolean): Dataset => {
    const idx: number[] = [];
    data.keys.forEach((k, i) => {
      const inHoldout = data.holdout === undefined ? isHoldout(k, seed, holdoutFraction) : data.holdout[i] === 1;
      if (inHoldout === wantHoldout) idx.push(i);
    });
    const x = new Float32Array(idx.length * d);
    const y = new Float32Array(idx.length);
    idx.forEach((src, dst) => {
      x.set(data.x.subarray(src * d, (src + 1) * d), dst * d);
      y[dst] = data.y[src]!;
    });
    return { features: data.features, x, y, keys: idx.map((i) => data.keys[i]!), rows: idx.length, skipped: {} };
  };
  return { train: pick(false), holdout: pick(true) };
}
