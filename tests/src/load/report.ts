import type { LoadResult } from './orchestrator.js';

function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Median round time, leaving out round 1 when there are later rounds (it includes selection). */
export function medianRoundSeconds(r: Pick<LoadResult, 'roundSeconds'>): number {
  return median(r.roundSeconds.length > 1 ? r.roundSeconds.slice(1) : r.roundSeconds);
}

/** Session drops the coordinator logged before the clinics were stopped. */
export function dropCount(r: Pick<LoadResult, 'coordinatorDrops'>): number {
  return Object.values(r.coordinatorDrops).reduce((a, b) => a + b, 0);
}

const f = (v: number, digits = 1): string => (Number.isFinite(v) ? v.toFixed(digits) : '—');

/** Header of the benchmark table (markdown). */
export const TABLE_HEADER = [
  '| store | N | workers | hb ms | rounds ok | round s (med, r≥2) | coord CPU ms/clinic/round | idle CPU ms/clinic/s | coord loop lag p99 / max ms | status p50 / p95 ms | RSS peak MiB | drops coord log / metric / clinic (reconnects) | worker loop max ms | log lag at end s / lines dropped |',
  '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
].join('\n');

/** One row of the benchmark table. */
export function tableRow(r: LoadResult): string {
  const t = r.clinicsTotals;
  return `| sqlite | ${r.clinics} | ${r.workers} | ${r.heartbeatMs} | ${r.commits.length}/${r.rounds} | ${f(medianRoundSeconds(r), 2)} | ${f(r.cpuMsPerClinicRound, 2)} | ${f(r.idleCpuMsPerClinicSecond, 3)} | ${f(r.coordinatorLoopP99Ms, 0)} / ${f(r.coordinatorLoopMaxMs, 0)} | ${f(r.status.p50, 0)} / ${f(r.status.p95, 0)} | ${f(r.peakRssMiB, 0)} | ${dropCount(r)} / ${r.coordinatorDropMetric ?? '—'} / ${t.sessionDrops} (${t.reconnects}) | ${f(t.loopMaxMs, 0)} | ${f(r.logLagSeconds)} / ${r.logLinesDropped ?? '—'} |`;
}

/** A plain-text summary of one run, every figure measured in that run. */
export function summary(r: LoadResult): string {
  const t = r.clinicsTotals;
  const errors = Object.entries(t.errors).map(([k, v]) => `${k} ×${v}`).join(', ') || 'none';
  const drops = Object.entries(r.coordinatorDrops).map(([k, v]) => `${k} ×${v}`).join(', ') || 'none';
  return [
    `study ${r.studyId}: ${r.studyState}, ${r.commits.length}/${r.rounds} rounds committed (${r.parameters} parameters, ${r.clinics} clinics in ${r.workers} workers, heartbeat ${r.heartbeatMs} ms)`,
    `setup: enrolment ${f(r.enrolSeconds)} s, sessions ${f(r.connectSeconds)} s; study ${f(r.studySeconds)} s; rounds ${r.roundSeconds.map((s) => f(s, 2)).join(' / ')} s`,
    `accepted updates per round: ${r.commits.map((c) => String(c.updates)).join(' / ')}; evaluated sites: ${r.commits.map((c) => String(c.evaluatedSites)).join(' / ')}`,
    `coordinator CPU: ${f(r.cpuMsPerClinicRound, 2)} ms per clinic per round (study start to end); idle ${f(r.idleCpuMsPerClinicSecond, 3)} ms per clinic per second`,
    `coordinator peak RSS ${f(r.peakRssMiB, 0)} MiB; event-loop lag (from /metrics, 1 s scrapes) p99 ${f(r.coordinatorLoopP99Ms, 0)} ms, max ${f(r.coordinatorLoopMaxMs, 0)} ms`,
    `status API: ${r.status.samples} samples (${r.status.failures} failed), p50 ${f(r.status.p50, 0)} ms, p95 ${f(r.status.p95, 0)} ms, p99 ${f(r.status.p99, 0)} ms, max ${f(r.status.max, 0)} ms`,
    `session drops: coordinator log ${dropCount(r)} (${drops}), metric ${r.coordinatorDropMetric ?? '— (no such metric)'}; clinics ${t.sessionDrops}, reconnects ${t.reconnects}; worker event-loop max ${f(t.loopMaxMs, 0)} ms (p99 ${f(t.loopP99Ms, 0)} ms)`,
    `coordinator log lag when the study ended: ${Number.isFinite(r.logLagSeconds) ? `${f(r.logLagSeconds)} s` : 'over 60 s or line dropped'}; log lines dropped: ${r.logLinesDropped ?? '— (no such metric)'}`,
    `clinic work: train ${t.trainOk}, evaluate ${t.evalOk}; errors: ${errors}`,
  ].join('\n');
}
