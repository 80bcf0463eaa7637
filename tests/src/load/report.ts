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
/** A bucket bound: "> last bucket" past the histogram's last finite bucket. */
const bound = (v: number, last: string): string => (v === Number.POSITIVE_INFINITY ? `> ${last}` : f(v, 1));

/**
 * Header of the benchmark table (markdown): the columns of design §7, plus the run's shape
 * (workers, rounds committed), idle cost, status p50, commit p99, GC share and the machine's load.
 */
export const TABLE_HEADER = [
  '| store | N | workers | hb ms | rounds ok | round s (med) | coord CPU ms/clinic/round | × vs N=1000 | idle CPU ms/clinic/s | loop delay p99 / max ms | status p50 / p95 ms | RSS peak MiB | (RSS−3·model)/N KiB | drops coord log / metric / clinic (reconnects) | log lag s / dropped | batch p50 units / ops | commit p99 ms | GC % | load avg 1 min start → end |',
  '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
].join('\n');

/**
 * One row of the benchmark table. `cpuAt1000` is coordinator CPU ms/clinic/round of the N = 1000
 * run of the same store and heartbeat, for the growth column ("—" without it).
 */
export function tableRow(r: LoadResult, cpuAt1000?: number): string {
  const t = r.clinicsTotals;
  const b = r.storeBatch;
  const growth = cpuAt1000 === undefined ? '—' : `${f(r.cpuMsPerClinicRound / cpuAt1000, 2)}×`;
  const load = `${f(r.loadAverage.start[0] ?? Number.NaN, 2)} → ${f(r.loadAverage.end[0] ?? Number.NaN, 2)}`;
  return [
    '', r.store, r.clinics, r.workers, r.heartbeatMs, `${r.commits.length}/${r.rounds}${r.pinned === true ? ' (pinned)' : ''}`, f(medianRoundSeconds(r), 2),
    f(r.cpuMsPerClinicRound, 2), growth, f(r.idleCpuMsPerClinicSecond, 3),
    `${f(r.coordinatorLoopP99Ms, 0)} / ${f(r.coordinatorLoopMaxMs, 0)}`, `${f(r.status.p50, 0)} / ${f(r.status.p95, 0)}`,
    f(r.peakRssMiB, 0), f(r.rssPerClinicKiB, 1),
    `${dropCount(r)} / ${r.coordinatorDropMetric ?? '—'} / ${t.sessionDrops} (${t.reconnects})${t.connectFailures > 0 ? `, ${t.connectFailures} connects failed` : ''}`,
    `${f(r.logLagSeconds)} / ${r.logLinesDropped ?? '—'}`,
    b === undefined ? '—' : `${f(b.unitsP50, 0)} / ${f(b.opsP50, 0)}`, b === undefined ? '—' : bound(b.commitP99Ms, '5000'),
    r.gcShare === undefined ? '—' : f(r.gcShare * 100, 1), load, '',
  ].join(' | ').trim();
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
    `session drops: coordinator log ${dropCount(r)} (${drops}), metric ${r.coordinatorDropMetric ?? '— (no such metric)'}; clinics ${t.sessionDrops}, reconnects ${t.reconnects}, session calls failed before Welcome ${t.connectFailures}; worker event-loop max ${f(t.loopMaxMs, 0)} ms (p99 ${f(t.loopP99Ms, 0)} ms); coordinator heartbeats arrived up to ${f(t.heartbeatLagMaxMs, 0)} ms late`,
    `coordinator log lag when the study ended: ${Number.isFinite(r.logLagSeconds) ? `${f(r.logLagSeconds)} s` : 'over 60 s or line dropped'}; log lines dropped: ${r.logLinesDropped ?? '— (no such metric)'}`,
    `clinic work: train ${t.trainOk}, evaluate ${t.evalOk}; errors: ${errors}`,
    ...r.failures.map((x) => `FAILED ${x}`),
    `coordinator warnings: ${Object.entries(r.coordinatorWarnings).map(([k, v]) => `${k} ×${v.count}`).join(', ') || 'none'}`,
    `memory: model ${f(r.modelBytes / 1024, 1)} KiB; (peak RSS − 3 × model) / N = ${f(r.rssPerClinicKiB, 1)} KiB per clinic`,
    r.storeBatch === undefined
      ? 'store batches: — (no fedlhs_store_batch_size metric)'
      : `store batches during the study: ${r.storeBatch.batches}; units per batch p50 ${f(r.storeBatch.unitsP50, 0)} (max bucket ${f(r.storeBatch.unitsMax, 0)}), ops p50 ${f(r.storeBatch.opsP50, 0)}; commit p50 ${bound(r.storeBatch.commitP50Ms, '5000')} ms, p99 ${bound(r.storeBatch.commitP99Ms, '5000')} ms (bucket bounds; by bucket ${r.storeBatch.commitMsBuckets.map((x) => `≤${x.leMs ?? '∞'}: ${x.count}`).join(', ')})`,
    `GC: ${r.gcShare === undefined ? '— (no fedlhs_gc_seconds_total)' : `${f(r.gcShare * 100, 1)} % of the study's wall time`}; machine load average ${r.loadAverage.start.map((x) => f(x, 2)).join('/')} at start, ${r.loadAverage.end.map((x) => f(x, 2)).join('/')} at the study's end${r.pinned ? '; coordinator pinned to CPU 0, clinics to the others' : ''}`,
  ].join('\n');
}
