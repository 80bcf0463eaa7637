import type { DpUtilityReport } from './dp-utility.js';
import { fmtAuc, fmtDiff } from './dp-utility.js';
import { MIN_CASES_FOR_AUC, differenceVerdict } from './evaluation.js';
import { signed } from './format.js';

const eps = (e: number | null): string => (e === null ? '-' : Number.isFinite(e) ? e.toFixed(3) : '∞');

/** What the paired interval supports about one arm's cost, in words. */
function verdict(d: DpUtilityReport['arms'][number]['vsNoDp']): string {
  switch (differenceVerdict(d)) {
    case 'below': return 'worse than without DP';
    case 'above': return 'better than without DP';
    case 'includes-zero': return 'no difference shown';
    case 'too-few': return `too few cases (< ${MIN_CASES_FOR_AUC})`;
    case 'none': return '-';
  }
}

/** Per target epsilon over its draws (shown with --repeats > 1). */
function summaryTable(r: DpUtilityReport): string {
  const sd = (x: number | null): string => (x === null ? '' : ` ± ${x.toFixed(3)}`);
  const rows = r.byEpsilon.map((b) => `| ε=${b.targetEpsilon} | ${b.draws} | ${b.auc === null ? '-' : `${b.auc.mean.toFixed(3)}${sd(b.auc.sd)} (${b.auc.min.toFixed(3)}–${b.auc.max.toFixed(3)})`} | ${b.difference === null ? '-' : `${signed(b.difference.mean)}${sd(b.difference.sd)}`} |`);
  return `Over the draws (mean ± sample sd; range): the noise's own variation, which one row's interval does not include.

| target | draws | AUC | Δ AUC vs no DP |
|---|---|---|---|
${rows.join('\n')}
`;
}

/**
 * dp-utility.md: one row per arm — target ε, the manifest's z and C, the released model's AUC on
 * every clinic's test patients with its 95 % interval, the paired difference from the model
 * without DP, the epsilon the accountant planned and the clinics' ledgers reached, and run time.
 */
export function dpUtilityMarkdown(r: DpUtilityReport): string {
  const s = r.settings;
  const rows = r.arms.map((a) => `| ${a.label} | ${a.noiseMultiplier === null ? '-' : a.noiseMultiplier.toPrecision(4)} | ${a.clipNorm ?? '-'} | ${fmtAuc(a.result)} | ${a.vsNoDp === null ? '-' : `${fmtDiff(a.vsNoDp)} (${verdict(a.vsNoDp)})`} | ${eps(a.plannedEpsilon)} | ${eps(a.spentEpsilon)}${a.roundsSpent === null ? '' : ` (${a.roundsSpent} rounds)`} | ${a.clippedFraction === null ? '-' : `${Math.round(a.clippedFraction * 100)} %`} | ${a.release.round}/${a.release.of} | ${fmtAuc(a.lastRound)} | ${a.seconds} |`);
  return `# Differential privacy: utility cost on the default simulation

${s.clinics} clinics (seed ${s.seed}, scale ${s.scale}), ${s.rounds} rounds, **${s.placement}** DP-FedAvg, δ = ${s.delta},
clipping fixed at C = ${s.clip.norm} (${s.clip.source}); ${s.repeats} stud${s.repeats === 1 ? 'y' : 'ies'} per ε. The noise multiplier z is the smallest whose ${s.rounds}
Gaussian rounds at sampling rate 1 give each clinic ε ≤ the target at δ (core accountant).
Every released model is scored on all clinics' test patients (${r.testPatients.n} patients, ${r.testPatients.cases} cases);
AUC with its stratified bootstrap 95 % interval, Δ the paired difference from the model without DP on the
same patients (${s.bootstrap.resamples} resamples, seed ${s.bootstrap.seed}). All arms ran in one invocation.

| arm | z | C | AUC [95 % CI] | Δ AUC vs no DP [95 % CI] | ε planned | ε spent (max over clinics) | updates clipped | released round | last round's AUC | run s |
|---|---|---|---|---|---|---|---|---|---|---|
${rows.join('\n')}

${r.byEpsilon.some((b) => b.draws > 1) ? `${summaryTable(r)}\n` : ''}The initial model (round 0, untrained, the same in every arm): AUC ${r.initial === null ? 'not available' : fmtAuc(r.initial)}.

"ε spent" is what the clinics' own ledgers reached (agents' \`privacy.spent\`); a round tried again is paid
again, so it can exceed the plan. The released round is chosen on the clinics' validation AUCs, which DP does
not cover; "last round" is the model without that choice. The noise is drawn from a CSPRNG: each DP row is one
draw, so rows at nearby ε can cross. Backend ${s.backend}; ${r.seconds} s in all; ${r.createdAt}.
`;
}
