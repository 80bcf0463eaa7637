import type { ReleaseDescriptor } from '@fedlhs/core';
import type { MetricRecord, RoundRecord } from '../store.js';

/** A selection rule of the manifest's release section (core `releasePolicy(m).selection`). */
type SelectionRule = ReleaseDescriptor['selection']['rule'];

/** What the choice of a released round reads: the study's committed rounds and stored metrics. */
export interface SelectionInput {
  rule: SelectionRule;
  /** The study's rounds (any state, any attempt): only COMMITTED ones with a checkpoint count. */
  rounds: readonly Pick<RoundRecord, 'id' | 'round' | 'state' | 'checkpointPath' | 'checkpointSha256'>[];
  /** The study's stored metrics (store.listMetrics). Only phase 'evaluation' global rows are read. */
  metrics: readonly (MetricRecord & { round: number })[];
  /** Sites whose evaluation of each round was accepted, by round (default: the site rows stored). */
  evaluatedSites?: ReadonlyMap<number, number>;
}

/** The released round and why (release.json `selection`, plus the round's record id). */
export interface Selection {
  round: number;
  /** RoundRecord.id of the committed attempt. */
  roundId: number;
  rule: SelectionRule;
  reason: string;
  /** Loud notes: the builder logs them and release.json and the model card carry them. */
  warnings: string[];
  /** True when the rule found no round with its figure and the last committed round was taken. */
  fallback: boolean;
  candidates: ReleaseDescriptor['selection']['candidates'];
}

const fmt = (x: number): string => (Math.round(x * 1000) / 1000).toString();

/**
 * Chooses the round a release is made of, from the validation figures alone: the federated
 * (example-weighted) global rows of phase 'evaluation'. Phase 'test' rows are never read here:
 * choosing on the patients the release reports on would flatter it.
 *
 * - 'best-validation-auc': highest global validation AUC, ties to the later round;
 * - 'best-validation-loss': lowest global validation loss, ties to the later round;
 * - 'last-round': the last committed round.
 *
 * Only rounds evaluated by as many sites as the most-evaluated rounds compete (the evaluation
 * phase has no quorum, and a pooled figure over fewer sites does not compare); rounds left out
 * are named in one warning, and if none of the most-evaluated rounds has the figure the last
 * committed round is released with a warning (`fallback`).
 *
 * Round 0 (the untrained initial model) is a candidate only when it is the only committed
 * round, and then with a warning. When no candidate has the figure the rule needs, the last
 * committed round is released with a warning saying so (`fallback`). Throws if nothing was
 * committed at all (a study that completed always has round 0).
 */
export function selectRound(input: SelectionInput): Selection {
  const committed = new Map<number, number>();
  for (const r of input.rounds) {
    if (r.state === 'COMMITTED' && r.checkpointPath !== null && r.checkpointSha256 !== null) committed.set(r.round, r.id);
  }
  if (committed.size === 0) throw new Error('the study has no committed round with a checkpoint');
  const trained = [...committed.keys()].filter((n) => n > 0).sort((a, b) => a - b);
  const warnings: string[] = [];
  const pool = trained.length > 0 ? trained : [0];
  if (trained.length === 0) {
    warnings.push('no round was trained: the only committed model is the initial one (round 0), released untrained');
  }
  const globals = new Map<number, MetricRecord>();
  const siteRows = new Map<number, number>();
  for (const m of input.metrics) {
    if (m.phase !== 'evaluation' || committed.get(m.round) !== m.roundId) continue;
    if (m.nodeId === null) globals.set(m.round, m);
    else siteRows.set(m.round, (siteRows.get(m.round) ?? 0) + 1);
  }
  const candidates = pool.map((round) => {
    const g = globals.get(round);
    return {
      round,
      validationAuc: g?.auc !== undefined && g.auc !== null && Number.isFinite(g.auc) ? g.auc : null,
      validationLoss: g !== undefined && Number.isFinite(g.loss) ? g.loss : null,
      evaluatedSites: input.evaluatedSites?.get(round) ?? siteRows.get(round) ?? 0,
    };
  });
  const last = pool[pool.length - 1]!;
  const chosen = (round: number, reason: string, fallback = false): Selection => ({
    round, roundId: committed.get(round)!, rule: input.rule, reason, warnings, fallback, candidates,
  });
  if (input.rule === 'last-round') {
    return chosen(last, `the last committed round (${last}) as the manifest asks (release.selection last-round): no selection on validation figures was made`);
  }
  const byAuc = input.rule === 'best-validation-auc';
  const figure = byAuc ? 'validation AUC' : 'validation loss';
  const valueOf = (c: (typeof candidates)[number]): number | null => (byAuc ? c.validationAuc : c.validationLoss);
  // Pooled figures over different sets of sites do not compare (a round evaluated only by a
  // small, easy site would win): only rounds evaluated by as many sites as the most-evaluated
  // rounds compete; the others (with the figure) are named in one warning.
  const most = Math.max(0, ...candidates.map((c) => c.evaluatedSites));
  const fewer = candidates.filter((c) => valueOf(c) !== null && c.evaluatedSites < most);
  if (fewer.length > 0) {
    warnings.push(
      `round(s) ${fewer.map((c) => `${c.round} (${c.evaluatedSites} site(s))`).join(', ')} left out of the selection: evaluated by fewer sites than the ` +
        `${most} of the most-evaluated round(s), so their pooled ${figure} is not comparable`,
    );
  }
  let best: (typeof candidates)[number] | undefined;
  for (const c of candidates) {
    if (c.evaluatedSites < most) continue;
    const value = byAuc ? c.validationAuc : c.validationLoss;
    if (value === null) continue;
    const bestValue = best === undefined ? undefined : byAuc ? best.validationAuc! : best.validationLoss!;
    // `>=` / `<=` over rounds in ascending order: ties go to the later round.
    if (bestValue === undefined || (byAuc ? value >= bestValue : value <= bestValue)) best = c;
  }
  if (best === undefined && fewer.length > 0) {
    warnings.push(`no round evaluated by ${most} site(s) has a federated ${figure}: released the last committed round ${last} without selection`);
    return chosen(last, `the last committed round (${last}): no round evaluated by the most sites had a ${figure} to choose on`, true);
  }
  if (best === undefined) {
    warnings.push(
      `no committed round has a federated ${figure} (${candidates.length} round(s) without one: no site evaluated, or fewer than minCellCount examples): ` +
        `released the last committed round ${last} without selection`,
    );
    return chosen(last, `the last committed round (${last}): no round had a ${figure} to choose on`, true);
  }
  const value = byAuc ? best.validationAuc! : best.validationLoss!;
  const missing = candidates.filter((c) => valueOf(c) === null).length;
  const compared = candidates.length - missing - fewer.length;
  return chosen(
    best.round,
    `${byAuc ? 'best' : 'lowest'} federated ${figure} ${fmt(value)} of ${compared} round(s) evaluated by ${most} site(s)` +
      `${missing > 0 ? ` (${missing} without one)` : ''}${fewer.length > 0 ? ` (${fewer.length} evaluated by fewer sites left out)` : ''}; ties to the later round`,
  );
}
