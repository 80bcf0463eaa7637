import type { LogLine } from '@fedlhs/testing';

/*
 * Figures of one mode (plain FedAvg or secure aggregation) of the real-process secagg bench
 * (secagg-agents.ts), read from what the processes themselves logged: the agents' payload
 * bytes (model.downloaded, update.sent, secagg.stage_sent) and the coordinator's round and
 * stage lines (round.started, round.phase, secagg.stage_closed, round.committed).
 */

/** What one mode of one N measured. */
export interface AgentModeFigures {
  studyId: string;
  studyState: string;
  committed: number;
  /** Accepted training results (updates or masked inputs) per committed round. */
  accepted: number[];
  failures: string[];
  /** Coordinator round records (start to commit, evaluation included), seconds. */
  roundSeconds: number[];
  /** Median over rounds 2.. (all rounds when there is one). */
  medianRoundSeconds: number;
  studySeconds: number;
  /** Payload bytes per clinic per round the agents logged: up = updates and stage answers, down = model downloads. */
  upBytes: number;
  downBytes: number;
  byCategory: Record<string, number>;
  /** Coordinator CPU (user + system) over the study, per clinic per round, ms. */
  coordinatorCpuMsPerClinicRound: number;
  /** All agents' CPU over the study, per clinic per round, ms. */
  agentCpuMsPerClinicRound: number;
  coordinatorRssMiB: number;
  /** When each coordinator step ended, ms after round.started: median over rounds 2.. (ordered). */
  steps: { step: string; medianMs: number }[];
  /** Agent warnings and errors during the study, by event. */
  agentWarnings: Record<string, number>;
  coordinatorWarnings: Record<string, number>;
  /** Agents whose final-model line had not come when the figures were read (their bytes may be short). */
  agentsWithoutFinalLine: number;
  loadAverage: { start: number[]; end: number[] };
}

/** A pino line's time (epoch ms, or an ISO string with a custom timestamp). */
export function logTime(l: LogLine): number {
  return typeof l.time === 'number' ? l.time : Date.parse(String(l.time));
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Rounds 2.. when there are several (round 1 carries JIT and model warm-up), else all. */
export function laterRounds<T>(values: readonly T[]): T[] {
  return values.length > 1 ? values.slice(1) : [...values];
}

/**
 * Payload bytes the agents logged for one study, per clinic per round, by category:
 * `down <task kind>` model downloads, `up update` plain uploads, `up <stage>` stage answers.
 */
export function agentBytes(agentLines: readonly (readonly LogLine[])[], studyId: string, clinics: number, rounds: number): { up: number; down: number; byCategory: Record<string, number> } {
  const byCategory: Record<string, number> = {};
  let up = 0;
  let down = 0;
  for (const lines of agentLines) {
    for (const l of lines) {
      if (l.studyId !== studyId || typeof l.bytes !== 'number') continue;
      if (l.event === 'model.downloaded') {
        down += l.bytes;
        const k = `down ${String(l.kind)}`;
        byCategory[k] = (byCategory[k] ?? 0) + l.bytes;
      } else if (l.event === 'update.sent' || l.event === 'secagg.stage_sent') {
        up += l.bytes;
        const k = l.event === 'update.sent' ? 'up update' : `up ${String(l.stage)}`;
        byCategory[k] = (byCategory[k] ?? 0) + l.bytes;
      }
    }
  }
  const per = clinics * rounds;
  return { up: up / per, down: down / per, byCategory: Object.fromEntries(Object.entries(byCategory).map(([k, v]) => [k, v / per]).sort()) };
}

/** Event counts of warn-or-worse lines (pino level ≥ 40) for a study (or without a study). */
export function warnings(lines: readonly LogLine[], studyId: string, from: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const l of lines.slice(from)) {
    if (typeof l.level !== 'number' || l.level < 40) continue;
    if (l.studyId !== undefined && l.studyId !== studyId) continue;
    const k = String(l.event ?? l.msg);
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}

/**
 * When each step of a round ended, from the coordinator's own lines: phase changes
 * (`→STATE:phase`), secure-aggregation stages closing (`<stage> closed`) and the commit,
 * in ms after the attempt's round.started; medians over rounds 2...
 */
export function roundSteps(coordinatorLines: readonly LogLine[], studyId: string): { step: string; medianMs: number }[] {
  const starts = new Map<string, number>();
  const perRound = new Map<number, Map<string, number>>();
  for (const l of coordinatorLines) {
    if (l.studyId !== studyId || typeof l.round !== 'number') continue;
    const time = logTime(l);
    if (!Number.isFinite(time)) continue;
    const key = `${l.round}/${String(l.attempt)}`;
    if (l.event === 'round.started') {
      starts.set(key, time);
      continue;
    }
    const t0 = starts.get(key);
    if (t0 === undefined) continue;
    const step = l.event === 'round.phase' ? `→${String(l.state)}${l.phase === undefined ? '' : `:${String(l.phase)}`}`
      : l.event === 'secagg.stage_closed' ? `${String(l.stage)} closed`
        : l.event === 'round.committed' ? 'committed' : undefined;
    if (step === undefined) continue;
    const m = perRound.get(l.round) ?? new Map<string, number>();
    perRound.set(l.round, m);
    if (!m.has(step)) m.set(step, time - t0);
  }
  const rounds = laterRounds([...perRound.keys()].sort((a, b) => a - b));
  const steps = new Map<string, number[]>();
  for (const r of rounds) for (const [step, ms] of perRound.get(r) ?? []) steps.set(step, [...(steps.get(step) ?? []), ms]);
  return [...steps].map(([step, ms]) => ({ step, medianMs: median(ms) })).sort((a, b) => a.medianMs - b.medianMs);
}

const kB = (b: number): string => (b / 1000).toFixed(1);

/** The comparison table of one N (markdown). */
export function agentTable(shape: { clinics: number; parameters: number; neighbours: number; valueBits: number }, plain: AgentModeFigures, secure: AgentModeFigures): string {
  const row = (mode: string, f: AgentModeFigures): string => {
    const bytes = (f.upBytes + f.downBytes) / (plain.upBytes + plain.downBytes);
    return `| ${shape.clinics} | ${mode} | ${f.committed}/${f.accepted.join(',')} | ${kB(f.upBytes)} | ${kB(f.downBytes)} | ${kB(f.upBytes + f.downBytes)} | ${bytes.toFixed(3)}× | ${f.roundSeconds.map((s) => s.toFixed(2)).join('/')} | ${f.medianRoundSeconds.toFixed(2)} | ${(f.medianRoundSeconds / plain.medianRoundSeconds).toFixed(2)}× | ${f.coordinatorCpuMsPerClinicRound.toFixed(1)} | ${(f.coordinatorCpuMsPerClinicRound / plain.coordinatorCpuMsPerClinicRound).toFixed(2)}× | ${f.agentCpuMsPerClinicRound.toFixed(0)} | ${f.loadAverage.start[0]!.toFixed(1)}→${f.loadAverage.end[0]!.toFixed(1)} |`;
  };
  const steps = (f: AgentModeFigures): string => f.steps.map((s) => `${s.step} ${(s.medianMs / 1000).toFixed(2)}`).join(', ');
  return [
    `real processes: N=${shape.clinics} agents, ${shape.parameters} parameters, secure aggregation with ${shape.neighbours} neighbours, threshold majority, ${shape.valueBits}-bit values`,
    '| N | mode | rounds/accepted | up kB/clinic/round | down kB | total kB | bytes × plain | round s | median 2.. s | time × plain | coord CPU ms/clinic/round | × plain | agent CPU ms/clinic/round | load avg 1 min |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    row('plain', plain),
    row('secagg', secure),
    `steps (s after round start, median 2..): plain: ${steps(plain)}`,
    `  secagg: ${steps(secure)}`,
    `bytes by category (per clinic per round): plain ${JSON.stringify(plain.byCategory)}; secagg ${JSON.stringify(secure.byCategory)}`,
  ].join('\n');
}
