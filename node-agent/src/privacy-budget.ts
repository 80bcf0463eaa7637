import { DEFAULT_ORDERS, effectiveNoiseMultiplier, rdpToEpsilon, roundRdp, type MechanismContext, type StudyManifest } from '@fedlhs/core';
import type { AgentState } from './agent-state.js';
import type { AgentConfig } from './config.js';


/**
 * Whether the accounting counts secure aggregation as hiding a clinic's update from the
 * coordinator (distributed noise then counted at the full z instead of z/√clients.min). Not
 * yet. The consistency stage stops a coordinator from unmasking one clinic (review of issue 14,
 * HIGH 1), but the full z also needs the sum to carry at least clients.min clinics' noise, and
 * the survivor set a clinic signs names ids only the coordinator vouches for: it can pad the set
 * with clinics that never took part, or enrol clinics of its own, so the real sum may carry far
 * less noise (review secagg2 HIGH 2). Until the participants' identities are rooted outside the
 * coordinator (e.g. listed in the manifest each clinic approves), a clinic counts its own share
 * only. This also keeps the charge independent of the data: clipping its noised values to
 * ±clipRange is post-processing of its own noised update (review clinic2 HIGH 1: a charge that
 * depended on whether values were clipped leaked that fact and could decline repeatedly).
 */
export const SECURE_AGGREGATION_COUNTS = false;

/**
 * The fewest survivors this clinic lets a secure-aggregation round unmask with (SecAggClient
 * minSurvivors): with distributed DP, clients.min (the sum the manifest promises), else 2 (one
 * clinic alone would be its own sum). Defence in depth: the accounting does not rely on it.
 */
export function secureAggregationMinSurvivors(manifest: StudyManifest): number {
  return manifest.privacy?.dp?.placement === 'distributed' ? Math.max(2, manifest.clients.min) : 2;
}

/** Whether this study's secure aggregation is counted as hiding the clinic's update (see SECURE_AGGREGATION_COUNTS). */
export function countsSecureAggregation(manifest: Pick<StudyManifest, 'privacy'>): boolean {
  return SECURE_AGGREGATION_COUNTS && manifest.privacy?.secureAggregation !== undefined;
}

/** The accountant's view of a study for this clinic (core MechanismContext). */
export function mechanismContext(manifest: StudyManifest, config: Pick<BudgetConfig, 'trustCoordinatorNoise'>): MechanismContext {
  return { clientsMin: manifest.clients.min, secureAggregation: countsSecureAggregation(manifest), trustCoordinatorNoise: config.trustCoordinatorNoise };
}

/** The clinic's budget settings (agent config `privacy`). */
export type BudgetConfig = AgentConfig['privacy'];

/** Every reason about the budget starts so (proto "Privacy budgets"): operators and tests match on it. */
export const BUDGET_PREFIX = 'privacy budget:';

/** The reason a clinic with a budget gives for a study without differential privacy. */
export const NO_DP_REASON = `${BUDGET_PREFIX} this study has no differential privacy and this clinic holds a budget`;

/** The defaults of agent config `privacy`: no limit, δ 1e-6, central noise not trusted. */
export const NO_BUDGET: BudgetConfig = Object.freeze({ maxEpsilonPerStudy: 0, maxEpsilonLifetime: 0, delta: 1e-6, trustCoordinatorNoise: false });

/** Whether this clinic holds a budget (any limit set). */
export function holdsBudget(c: BudgetConfig): boolean {
  return c.maxEpsilonPerStudy > 0 || c.maxEpsilonLifetime > 0;
}

/** The PrivacyBudget of the proto (camelCase, as the loader takes it). */
export interface PrivacyBudgetMessage {
  epsilonSpent: number;
  epsilonStudyLimit: number;
  epsilonLifetimeSpent: number;
  epsilonLifetimeLimit: number;
  delta: number;
}

/** What the next round of a study would do to this clinic's budget. */
export type RoundDecision =
  | { ok: true; rdp: number[]; epsilonStudy: number; epsilonLifetime: number; noiseMultiplier: number }
  | { ok: false; reason: string; rdp: number[] | undefined; epsilonStudy: number; epsilonLifetime: number };

const sumInto = (acc: number[], rdp: readonly number[]): void => {
  for (let i = 0; i < acc.length; i++) acc[i]! += rdp[i] ?? Infinity;
};

/** "1.234" for a finite epsilon, "∞" for an unprotected one. */
export const fmtEpsilon = (e: number): string => (Number.isFinite(e) ? (e < 0.01 ? e.toExponential(2) : e.toFixed(3)) : '∞');

/**
 * The clinic-held privacy budget over the agent's ledger (AgentState privacy_ledger): spends are
 * RDP vectors at DEFAULT_ORDERS, composed by adding them and converted to epsilon at the clinic's
 * delta (so a study's epsilon and the lifetime's are both tight compositions, not sums of epsilons).
 */
export class PrivacyBudget {
  private readonly config: BudgetConfig;

  /** `config` undefined (a configuration built without the privacy section, in tests): no budget, δ 1e-6. */
  constructor(private readonly state: AgentState, config: BudgetConfig | undefined) {
    this.config = config ?? NO_BUDGET;
  }

  /** Summed RDP of ledger rows. */
  private rdpOf(rows: readonly { rdp: readonly number[] }[]): number[] {
    const acc = DEFAULT_ORDERS.map(() => 0);
    for (const row of rows) sumInto(acc, row.rdp);
    return acc;
  }

  private epsilonOf(rdp: readonly number[]): number {
    if (rdp.every((x) => x === 0)) return 0;
    if (rdp.some((x) => !Number.isFinite(x))) return Infinity;
    return rdpToEpsilon([...DEFAULT_ORDERS], [...rdp], this.config.delta).epsilon;
  }

  /** Epsilon spent so far in one study, and over the lifetime. */
  spent(studyId: string): { study: number; lifetime: number; rounds: number } {
    const rows = this.state.listPrivacySpends(studyId);
    return { study: this.epsilonOf(this.rdpOf(rows)), lifetime: this.epsilonOf(this.rdpOf(this.state.listPrivacySpends(undefined))), rounds: rows.length };
  }

  /**
   * The RDP one round of this study costs this clinic (Infinity at every order when its mechanism
   * does not protect it).
   */
  roundCost(manifest: StudyManifest): { rdp: number[]; noiseMultiplier: number } {
    const dp = manifest.privacy?.dp;
    if (dp === undefined) return { rdp: DEFAULT_ORDERS.map(() => Infinity), noiseMultiplier: 0 };
    const o = mechanismContext(manifest, this.config);
    return { rdp: roundRdp(dp, o, DEFAULT_ORDERS), noiseMultiplier: effectiveNoiseMultiplier(dp, o) };
  }

  /**
   * Whether round `round` of a study fits the budget: the study's and the lifetime's epsilon
   * after adding its RDP, against the limits. A study without DP never fits a clinic with a budget.
   */
  decide(studyId: string, round: number, manifest: StudyManifest): RoundDecision {
    const spent = this.spent(studyId);
    if (manifest.privacy?.dp === undefined) {
      return holdsBudget(this.config)
        ? { ok: false, reason: NO_DP_REASON, rdp: undefined, epsilonStudy: spent.study, epsilonLifetime: spent.lifetime }
        : { ok: true, rdp: [], epsilonStudy: spent.study, epsilonLifetime: spent.lifetime, noiseMultiplier: 0 };
    }
    const { rdp, noiseMultiplier } = this.roundCost(manifest);
    const study = this.rdpOf(this.state.listPrivacySpends(studyId));
    const lifetime = this.rdpOf(this.state.listPrivacySpends(undefined));
    sumInto(study, rdp);
    sumInto(lifetime, rdp);
    const epsilonStudy = this.epsilonOf(study);
    const epsilonLifetime = this.epsilonOf(lifetime);
    const { maxEpsilonPerStudy: perStudy, maxEpsilonLifetime: life } = this.config;
    const unprotected = noiseMultiplier === 0 ? ` (its ${manifest.privacy!.dp!.placement} noise does not protect this clinic${manifest.privacy!.dp!.placement === 'central' ? ': privacy.trustCoordinatorNoise is false' : ''})` : '';
    if (perStudy > 0 && !(epsilonStudy <= perStudy)) {
      return { ok: false, reason: `${BUDGET_PREFIX} round ${round} would bring this study to ε=${fmtEpsilon(epsilonStudy)} (limit ${perStudy}, δ=${this.config.delta})${unprotected}`, rdp, epsilonStudy, epsilonLifetime };
    }
    if (life > 0 && !(epsilonLifetime <= life)) {
      return { ok: false, reason: `${BUDGET_PREFIX} round ${round} of this study would bring this clinic's lifetime spend to ε=${fmtEpsilon(epsilonLifetime)} (limit ${life}, δ=${this.config.delta})${unprotected}`, rdp, epsilonStudy, epsilonLifetime };
    }
    return { ok: true, rdp, epsilonStudy, epsilonLifetime, noiseMultiplier };
  }

  /**
   * Why this clinic takes no further part in the study, or undefined: a study without DP when
   * it holds a budget, or not even one more round that fits.
   */
  withdrawal(studyId: string, manifest: StudyManifest): string | undefined {
    const next = this.decide(studyId, this.spent(studyId).rounds + 1, manifest);
    if (next.ok) return undefined;
    if (next.rdp === undefined) return next.reason;
    const spent = this.spent(studyId);
    return `${BUDGET_PREFIX} no further round fits: this study has spent ε=${fmtEpsilon(spent.study)} (limit ${this.config.maxEpsilonPerStudy || 'none'}), this clinic ε=${fmtEpsilon(spent.lifetime)} over its lifetime (limit ${this.config.maxEpsilonLifetime || 'none'}), δ=${this.config.delta}; one more round would reach ε=${fmtEpsilon(next.epsilonStudy)} (study) / ${fmtEpsilon(next.epsilonLifetime)} (lifetime)`;
  }

  /** The PrivacyBudget a readiness carries: when the study has DP or the clinic holds a budget, else undefined. */
  message(studyId: string, manifest: StudyManifest | undefined): PrivacyBudgetMessage | undefined {
    if (manifest?.privacy?.dp === undefined && !holdsBudget(this.config)) return undefined;
    const spent = this.spent(studyId);
    // The wire takes doubles; an unprotected (infinite) spend is sent as the largest double.
    const wire = (x: number): number => (Number.isFinite(x) ? x : Number.MAX_VALUE);
    return {
      epsilonSpent: wire(spent.study), epsilonStudyLimit: this.config.maxEpsilonPerStudy,
      epsilonLifetimeSpent: wire(spent.lifetime), epsilonLifetimeLimit: this.config.maxEpsilonLifetime, delta: this.config.delta,
    };
  }
}
