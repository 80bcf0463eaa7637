import { DEFAULT_ORDERS, effectiveNoiseMultiplier, rdpToEpsilon, roundRdp, type StudyManifest } from '@fedlhs/core';
import type { AgentConfig } from './config.js';
import { NO_DP_REASON, fmtEpsilon, holdsBudget, mechanismContext, secureAggregationMinSurvivors } from './privacy-budget.js';
import { clinicNoiseStd, clipNormOf } from './privacy-update.js';

/** Epsilon at `delta` after `rounds` rounds of RDP `perRound` (composition adds RDP). */
function epsilonAfter(perRound: readonly number[], rounds: number, delta: number): number {
  if (perRound.some((x) => !Number.isFinite(x))) return Infinity;
  return rdpToEpsilon([...DEFAULT_ORDERS], perRound.map((x) => x * rounds), delta).epsilon;
}

/**
 * What a study's differential privacy means for this clinic, for `fedlhs-agent review`: the
 * mechanism, the noise multiplier it effectively gets (as the clinic's own accounting sees it),
 * epsilon per round and over the study at its delta, and how its budget would stand.
 */
export function describePrivacy(m: StudyManifest, c: AgentConfig['privacy']): string[] {
  const dp = m.privacy?.dp;
  const counts = m.privacy?.counts;
  const countLine = counts?.disclosure === 'rounded' ? [`counts that leave are rounded to a multiple of ${counts.roundTo} (calibration bins are then left out)`] : [];
  const sa = m.privacy?.secureAggregation;
  const secaggLine = sa === undefined ? [] : [
    `secure aggregation (SecAgg+): each clinic shares its mask secrets with ${sa.neighbours} neighbours (${sa.graph} graph, threshold ${sa.threshold ?? 'a majority'}); changes clipped to ±${sa.clipRange} per value and quantised to ${sa.valueBits} bits; the coordinator learns only the sum`,
  ];
  if (dp === undefined) {
    return [holdsBudget(c) ? `no differential privacy: this clinic holds a budget, so it declines this study (${NO_DP_REASON})` : 'no differential privacy (the updates are not noised; this clinic holds no budget)', ...secaggLine, ...countLine];
  }
  const o = mechanismContext(m, c);
  const z = effectiveNoiseMultiplier(dp, o);
  const rdp = roundRdp(dp, o, DEFAULT_ORDERS);
  const perRound = epsilonAfter(rdp, 1, c.delta);
  const study = epsilonAfter(rdp, m.rounds, c.delta);
  const C = clipNormOf(dp);
  const std = clinicNoiseStd(dp, m.clients.min, C);
  const where = dp.placement === 'local'
    ? `this clinic adds Gaussian noise σ=${std.toPrecision(4)} (z·C) to its clipped change: it is protected from everyone, the coordinator included`
    : dp.placement === 'distributed'
      ? sa === undefined
        ? `this clinic adds σ=${std.toPrecision(4)} (z·C/√${m.clients.min}); without secure aggregation the coordinator sees each clinic's update, so only z/√clients.min protects it`
        : `this clinic adds σ=${std.toPrecision(4)} (z·C/√${m.clients.min}); under secure aggregation the coordinator sees only a sum (this clinic unmasks only inside a survivor set of at least ${secureAggregationMinSurvivors(m)} clinics that it and its neighbours signed), but this clinic counts its own share z/√${m.clients.min}: who is in that set is vouched for by the coordinator alone`
      : c.trustCoordinatorNoise
        ? 'the coordinator adds N(0,(z·C)²) to the sum; this clinic trusts it to (privacy.trustCoordinatorNoise)'
        : "the coordinator adds the noise to the sum: the coordinator itself sees this clinic's clipped update, so this clinic counts itself unprotected (privacy.trustCoordinatorNoise is false)";
  const limit = c.maxEpsilonPerStudy > 0 ? c.maxEpsilonPerStudy : undefined;
  let fits = '';
  if (limit !== undefined) {
    let n = 0;
    while (n < m.rounds && epsilonAfter(rdp, n + 1, c.delta) <= limit) n++;
    fits = `; this clinic's limit ε=${limit} covers ${n} of the ${m.rounds} round(s)${n < m.rounds ? ' (it declines the rest and withdraws)' : ''}`;
  }
  return [
    `DP-FedAvg, ${dp.placement} noise, noise multiplier z=${dp.noiseMultiplier}, updates clipped to L2 norm ${C}${dp.clipping.mode === 'adaptive' ? ` (adaptive clipping: this agent clips at initialNorm every round for now)` : ''}`,
    where,
    ...secaggLine,
    `effective noise multiplier for this clinic ${z === 0 ? '0 (no protection)' : z.toPrecision(4)}; ε per round ${fmtEpsilon(perRound)}, over ${m.rounds} round(s) ${fmtEpsilon(study)} at δ=${c.delta} (the unit protected is this clinic's whole data)${fits}`,
    ...countLine,
  ];
}
