import { expectedMean, type LoadResult } from '../load/index.js';
import { clinicUpdate } from '../load/model.js';
import { totalBytes, type WireBytes } from '../load/wire-meter.js';

/** What one mode (plain or secure aggregation) of one N measured. */
export interface ModeFigures {
  studyState: string;
  committed: number;
  /** Accepted updates (masked inputs) per committed round. */
  updates: number[];
  failures: string[];
  clinicErrors: Record<string, number>;
  sessionDrops: number;
  /** Round traffic per clinic per round (serialized protobuf bytes; heartbeats, Hello and Welcome left out). */
  upBytes: number;
  downBytes: number;
  /** Everything counted, heartbeats, Hello and Welcome included, per clinic per round. */
  allBytes: number;
  byCategory: Record<string, number>;
  messagesPerClinicRound: Record<string, number>;
  roundSeconds: number[];
  medianRoundSeconds: number;
  studySeconds: number;
  cpuMsPerClinicRound: number;
  peakRssMiB: number;
  coordinatorLoopMaxMs: number;
  workerLoopMaxMs: number;
  loadAverage: { start: number[]; end: number[] };
  coordinatorWarnings: Record<string, number>;
  /** Largest |committed − expected| over the committed rounds' models (and the quantisation step with secure aggregation). */
  modelError: { maxAbs: number; step: number | undefined };
  /** Where a round's time goes, task kind by task kind: medians over rounds 2.. (all rounds when there is one). */
  stages: StageFigures[];
  /** Last receipt of the round's last kind of task to the round's end (commit), median, ms. */
  tailMs: number;
  /** CPU of the clinics' secure-aggregation steps in the workers, per clinic per round and the largest single one (ms). */
  clinicComputeMs: Record<string, { perClinicRoundMs: number; maxMs: number }>;
  /** The same per round. */
  stagesByRound: { round: number; stages: StageFigures[]; tailMs: number }[];
}

/** One kind of task in a round, as the clinics saw it (ms). */
export interface StageFigures {
  kind: string;
  /** From the previous kind's last receipt (or the round's start) to this kind's first task: the coordinator between stages. */
  gapBeforeMs: number;
  /** First to last task of this kind arriving at the clinics (the coordinator sending them out). */
  dispatchMs: number;
  /** First task to last receipt. */
  spanMs: number;
  /** Task arrival to receipt at one clinic: mean and largest. */
  workMeanMs: number;
  workMaxMs: number;
}

function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Per-round stage figures from the clinics' task timeline and the coordinator's round records. */
export function stageFigures(r: LoadResult, b: WireBytes): Pick<ModeFigures, 'stages' | 'tailMs' | 'stagesByRound'> {
  type Timeline = { round: number; state: string; startedAt: string | null; endedAt: string | null };
  const records = ((r.detail as unknown as { timeline?: Timeline[] }).timeline ?? []).filter((x) => x.state === 'COMMITTED' && x.startedAt !== null && x.endedAt !== null);
  const stagesByRound = records.map((rec) => {
    const kinds = Object.entries(b.timeline)
      .filter(([k]) => k.startsWith(`${rec.round} `))
      .map(([k, t]) => ({ kind: k.slice(k.indexOf(' ') + 1), t }))
      .sort((x, y) => x.t.firstTaskMs - y.t.firstTaskMs);
    let previous = Date.parse(rec.startedAt!);
    const stages = kinds.map(({ kind, t }) => {
      const s: StageFigures = {
        kind, gapBeforeMs: t.firstTaskMs - previous, dispatchMs: t.lastTaskMs - t.firstTaskMs, spanMs: t.lastReceiptMs - t.firstTaskMs,
        workMeanMs: t.receipts === 0 ? Number.NaN : t.workSumMs / t.receipts, workMaxMs: t.workMaxMs,
      };
      previous = t.lastReceiptMs;
      return s;
    });
    return { round: rec.round, stages, tailMs: Date.parse(rec.endedAt!) - previous };
  });
  const used = stagesByRound.length > 1 ? stagesByRound.slice(1) : stagesByRound;
  const kinds = [...new Set(used.flatMap((x) => x.stages.map((s) => s.kind)))];
  const med = (kind: string, field: Exclude<keyof StageFigures, 'kind'>): number => median(used.flatMap((x) => x.stages.filter((s) => s.kind === kind).map((s) => s[field])));
  return {
    stages: kinds.map((kind) => ({
      kind, gapBeforeMs: med(kind, 'gapBeforeMs'), dispatchMs: med(kind, 'dispatchMs'), spanMs: med(kind, 'spanMs'), workMeanMs: med(kind, 'workMeanMs'), workMaxMs: med(kind, 'workMaxMs'),
    })),
    tailMs: median(used.map((x) => x.tailMs)),
    stagesByRound,
  };
}

/** Categories that depend on wall time or connection, not on the aggregation protocol. */
const SESSION_UPKEEP = new Set(['session.heartbeat', 'session.hello', 'session.welcome']);

/** Round traffic (up, down) and the session upkeep left out of it, in bytes. */
export function roundTraffic(b: WireBytes): { up: number; down: number; excluded: number } {
  const keep = (k: string): boolean => !SESSION_UPKEEP.has(k);
  const up = totalBytes(b.up, keep);
  const down = totalBytes(b.down, keep);
  return { up, down, excluded: totalBytes(b.up) + totalBytes(b.down) - up - down };
}

/**
 * How far the committed models are from what the clinics' synthetic updates give: plain FedAvg
 * the example-weighted mean (expectedMean), secure aggregation the round model plus the
 * unweighted mean of the changes (proto "Secure aggregation"). A check that the rounds really
 * aggregated the clinics' updates (the secure one within about half a quantisation step).
 */
export function modelError(r: LoadResult, step: number | undefined): { maxAbs: number; step: number | undefined } {
  let maxAbs = 0;
  for (let round = 1; round < r.models.length; round++) {
    const base = r.models[round - 1]!;
    const got = r.models[round]!;
    let expected: Float32Array;
    if (step === undefined) expected = expectedMean(r.nodeIds, round, base);
    else {
      const sum = new Float64Array(base.length);
      for (const id of r.nodeIds) {
        const w = clinicUpdate(id, round, base);
        for (let i = 0; i < w.length; i++) sum[i] = sum[i]! + (w[i]! - base[i]!);
      }
      expected = Float32Array.from(base, (v, i) => v + sum[i]! / r.nodeIds.length);
    }
    for (let i = 0; i < got.length; i++) maxAbs = Math.max(maxAbs, Math.abs(got[i]! - expected[i]!));
  }
  return { maxAbs, step };
}

const f = (v: number, digits = 1): string => (Number.isFinite(v) ? v.toFixed(digits) : '—');
const kb = (v: number): string => (Number.isFinite(v) ? (v / 1000).toFixed(1) : '—');
const x = (a: number, b: number): string => (Number.isFinite(a / b) ? `${(a / b).toFixed(3)}×` : '—');

/** The markdown tables of one N: the figures side by side, then bytes by category. */
export function table(shape: Record<string, unknown>, plain: ModeFigures, secure: ModeFigures): string {
  const row = (name: string, m: ModeFigures): string => {
    const total = m.upBytes + m.downBytes;
    const pTotal = plain.upBytes + plain.downBytes;
    return `| ${name} | ${m.studyState} ${m.committed}/${shape.rounds} (updates ${m.updates.join('/')}) | ${kb(m.upBytes)} | ${kb(m.downBytes)} | ${kb(total)} | ${x(total, pTotal)} | ${x(m.upBytes, plain.upBytes)} | ${kb(m.allBytes)} | ${m.roundSeconds.map((s) => f(s, 2)).join(' / ')} | ${f(m.medianRoundSeconds, 2)} | ${x(m.medianRoundSeconds, plain.medianRoundSeconds)} | ${f(m.cpuMsPerClinicRound, 1)} | ${f(m.peakRssMiB, 0)} | ${m.modelError.maxAbs.toExponential(2)}${m.modelError.step === undefined ? '' : ` (step ${m.modelError.step.toExponential(2)})`} |`;
  };
  const categories = [...new Set([...Object.keys(plain.byCategory), ...Object.keys(secure.byCategory)])].sort();
  const problems = [plain, secure].flatMap((m, i) => [
    ...m.failures.map((s) => `${i === 0 ? 'plain' : 'secagg'}: FAILED ${s}`),
    ...Object.entries(m.clinicErrors).map(([k, v]) => `${i === 0 ? 'plain' : 'secagg'}: clinic error ${k} ×${v}`),
    ...Object.entries(m.coordinatorWarnings).map(([k, v]) => `${i === 0 ? 'plain' : 'secagg'}: coordinator warning ${k} ×${v}`),
  ]);
  return [
    `N=${String(shape.clinics)}: ${String(shape.parameters)} parameters, ${String(shape.rounds)} rounds, ${String(shape.workers)} worker(s), neighbours ${String(shape.neighbours)} (threshold majority), valueBits ${String(shape.valueBits)} (${String(shape.modulusBits)}-bit words), order ${String(shape.order)}`,
    '',
    '| mode | study | up kB/clinic/round | down kB | total kB | bytes × plain | up × plain | all incl. heartbeats kB | round s | round s (med 2..) | time × plain | coord CPU ms/clinic/round | coord peak RSS MiB | model max error |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    row('plain FedAvg', plain),
    row('secure aggregation', secure),
    '',
    '| where a round goes (ms, median over rounds 2..) | mode | gap before (coordinator) | dispatch | first task → last receipt | clinic task→receipt mean / max |',
    '|---|---|---|---|---|---|',
    ...[['plain', plain] as const, ['secagg', secure] as const].flatMap(([name, m]) => [
      ...m.stages.map((s) => `| ${s.kind} | ${name} | ${f(s.gapBeforeMs, 0)} | ${f(s.dispatchMs, 0)} | ${f(s.spanMs, 0)} | ${f(s.workMeanMs, 0)} / ${f(s.workMaxMs, 0)} |`),
      `| last receipt → commit | ${name} | ${f(m.tailMs, 0)} | | | |`,
    ]),
    '',
    `clinic CPU per clinic per round (secure aggregation steps, in ${String(shape.workers)} worker event loop(s)): ${Object.entries(secure.clinicComputeMs).map(([k, c]) => `${k} ${f(c.perClinicRoundMs, 1)} ms (max ${f(c.maxMs, 0)})`).join(', ') || '—'}`,
    '',
    '| bytes per clinic per round | plain | secagg |',
    '|---|---|---|',
    ...categories.map((k) => `| ${k} | ${f(plain.byCategory[k] ?? 0, 0)} | ${f(secure.byCategory[k] ?? 0, 0)} |`),
    '',
    problems.length === 0 ? 'no failures, clinic errors or coordinator warnings' : problems.join('\n'),
  ].join('\n');
}
