import { capDetail } from './readiness.js';
import type { TaskKindName, TaskStateName } from './store.js';

/** One selected clinic's task in a phase, as far as explaining the phase's outcome goes. */
export interface PhaseTaskOutcome {
  siteName: string;
  state: TaskStateName;
  /** The agent's reason (FAILED, DECLINED) or the coordinator's (REJECTED); null if none. */
  detail: string | null;
  /** Whether the clinic is connected right now. */
  online: boolean;
}

export interface PhaseFailure {
  /** The attempt's FAILED reason, naming the causes: "3 of 3 clinics (a, b, c) failed training: fit: …". */
  reason: string;
  /**
   * When at least two clinics were asked and every one of them FAILED with the very same text:
   * that text. Such a failure is deterministic (a retry would only repeat it), so the study
   * fails at once instead of burning its remaining attempts.
   */
  sameFailureEverywhere: string | undefined;
}

const PHASE: Record<TaskKindName, string> = {
  TRAIN: 'training', STATISTICS: 'the statistics phase', EVALUATE: 'evaluation',
  SECAGG_KEYS: 'the secure-aggregation keys stage', SECAGG_SHARES: 'the secure-aggregation shares stage',
  SECAGG_MASKED_INPUT: 'the secure-aggregation masked-input stage', SECAGG_CONSISTENCY: 'the secure-aggregation consistency stage',
  SECAGG_UNMASK: 'the secure-aggregation unmask stage',
};

/** At most `max` site names, sorted, the rest counted. */
export function siteList(names: readonly string[], max = 5): string {
  const sorted = [...names].sort();
  return sorted.length <= max ? sorted.join(', ') : `${sorted.slice(0, max).join(', ')} and ${sorted.length - max} more`;
}

const text = (detail: string | null): string => (detail === null || detail.trim() === '' ? '(no reason given)' : capDetail(detail));

/**
 * Why a phase ended without its quorum, from what each selected clinic's task came to:
 * identical reasons grouped, each group with its count and sites, e.g. "quorum 2 not reached:
 * 2 failed training (clinic-a, clinic-b): fit: …; 1 did not report (clinic-c)".
 */
export function describePhaseFailure(kind: TaskKindName, outcomes: readonly PhaseTaskOutcome[], quorum: number, deadlinePassed: boolean): PhaseFailure {
  const phase = PHASE[kind];
  const n = outcomes.length;
  const failed = outcomes.filter((o) => o.state === 'FAILED');
  const reasons = new Set(failed.map((o) => text(o.detail)));
  if (n > 0 && failed.length === n && reasons.size === 1) {
    const detail = [...reasons][0]!;
    return {
      reason: `${n} of ${n} clinic(s) (${siteList(failed.map((o) => o.siteName))}) failed ${phase}: ${detail}`,
      sameFailureEverywhere: n >= 2 ? detail : undefined,
    };
  }
  const groups = new Map<string, { label: string; sites: string[]; detail: string | undefined }>();
  const add = (label: string, site: string, detail?: string): void => {
    const key = `${label}\u0000${detail ?? ''}`;
    const g = groups.get(key) ?? { label, sites: [], detail };
    g.sites.push(site);
    groups.set(key, g);
  };
  for (const o of outcomes) {
    switch (o.state) {
      case 'ACCEPTED': add('accepted', o.siteName); break;
      case 'FAILED': add(`failed ${phase}`, o.siteName, text(o.detail)); break;
      case 'DECLINED': add('declined', o.siteName, text(o.detail)); break;
      case 'REJECTED': add('rejected', o.siteName, text(o.detail)); break;
      case 'CANCELLED': add('cancelled', o.siteName, text(o.detail)); break;
      case 'ASSIGNED':
        if (deadlinePassed) add(o.online ? 'did not report' : 'offline, did not report', o.siteName);
        else add(o.online ? 'still working' : 'offline', o.siteName);
        break;
    }
  }
  const order = ['accepted', `failed ${phase}`, 'rejected', 'declined', 'offline, did not report', 'did not report', 'offline', 'still working', 'cancelled'];
  const parts = [...groups.values()]
    .sort((a, b) => order.indexOf(a.label) - order.indexOf(b.label) || b.sites.length - a.sites.length)
    .map((g) => `${g.sites.length} ${g.label} (${siteList(g.sites)})${g.detail === undefined ? '' : `: ${g.detail}`}`);
  const head = `quorum ${quorum} not reached${deadlinePassed ? ' by the deadline' : ''}`;
  return { reason: parts.length === 0 ? `${head}: no clinic was asked` : `${head}: ${parts.join('; ')}`, sameFailureEverywhere: undefined };
}
