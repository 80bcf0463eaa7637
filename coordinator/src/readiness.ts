import { sanitizeWireText } from '@fedlhs/core';
import type { ReadinessEntry, SessionRegistry } from './sessions.js';
import type { NodeRecord } from './store.js';

/**
 * Where a site stands for one study: a readiness the agent declared (the proto's Readiness
 * without its prefix: READY, NOT_APPROVED, COHORT_TOO_SMALL, FEATURE_SPEC_UNSUPPORTED,
 * DATA_ERROR, WITHDRAWN), or what the coordinator sees instead: OFFLINE (no session),
 * NOT_REPORTED (online, nothing declared for the study yet) or OTHER_MANIFEST (declared for a
 * manifest hash that is not the study's).
 */
export type SiteReadinessState =
  | 'READY' | 'NOT_APPROVED' | 'COHORT_TOO_SMALL' | 'FEATURE_SPEC_UNSUPPORTED' | 'DATA_ERROR' | 'WITHDRAWN' | 'UNSPECIFIED'
  | 'OFFLINE' | 'NOT_REPORTED' | 'OTHER_MANIFEST';

export interface SiteReadiness {
  nodeId: string;
  siteName: string;
  online: boolean;
  readiness: SiteReadinessState;
  /** The agent's detail (capped at DETAIL_MAX characters), or the coordinator's own words. */
  detail: string;
  /** Last message heard on the node's session (online), else when it was last seen. */
  lastHeartbeatAt: number | null;
  /** The clinic's own privacy accounting for the study, as its readiness last carried it (proto PrivacyBudget). */
  privacy?: SitePrivacyBudget | undefined;
}

/**
 * A clinic's PrivacyBudget as kept with its readiness: informative (the clinic enforces its budget
 * itself). An epsilon of Infinity means rounds that did not protect the clinic (sent as the largest double).
 */
export interface SitePrivacyBudget {
  epsilonSpent: number;
  /** 0: no limit. */
  epsilonStudyLimit: number;
  epsilonLifetimeSpent: number;
  /** 0: none. */
  epsilonLifetimeLimit: number;
  delta: number;
}

/** A readiness entry with the PrivacyBudget it carried (kept in the session's readiness map, sessions.ts). */
export type ReadinessWithPrivacy = ReadinessEntry & { privacy?: SitePrivacyBudget | undefined };

/**
 * The PrivacyBudget of a StudyReadiness as the coordinator keeps it, or undefined when absent or
 * not numbers that make sense (a negative or NaN value, a delta outside (0, 1)): it is shown to
 * operators, so nonsense is dropped rather than shown; ≥ 1e300 reads as Infinity.
 */
export function sitePrivacyOf(p: { epsilonSpent?: number; epsilonStudyLimit?: number; epsilonLifetimeSpent?: number; epsilonLifetimeLimit?: number; delta?: number } | null | undefined): SitePrivacyBudget | undefined {
  if (p == null) return undefined;
  const n = (x: number | undefined): number => (typeof x === 'number' && x >= 1e300 ? Infinity : Number(x ?? 0));
  const out = { epsilonSpent: n(p.epsilonSpent), epsilonStudyLimit: n(p.epsilonStudyLimit), epsilonLifetimeSpent: n(p.epsilonLifetimeSpent), epsilonLifetimeLimit: n(p.epsilonLifetimeLimit), delta: n(p.delta) };
  if (![out.epsilonSpent, out.epsilonStudyLimit, out.epsilonLifetimeSpent, out.epsilonLifetimeLimit].every((x) => x >= 0) || !(out.delta > 0 && out.delta < 1)) return undefined;
  return out;
}

/** "ε 1.23 of 2 (lifetime 3.1 of none), δ 1e-6" for a site's readiness line. */
export function describeSitePrivacy(p: SitePrivacyBudget): string {
  const e = (x: number): string => (Number.isFinite(x) ? String(Number(x.toPrecision(3))) : '∞');
  const lim = (x: number): string => (x > 0 ? e(x) : 'no limit');
  return `privacy ε ${e(p.epsilonSpent)} of ${lim(p.epsilonStudyLimit)} (lifetime ${e(p.epsilonLifetimeSpent)} of ${lim(p.epsilonLifetimeLimit)}), δ ${p.delta}`;
}

/**
 * Longest agent-supplied detail the coordinator shows or stores in a reason (the wire allows
 * more, WIRE_STRINGS['StudyReadiness.detail']; what is kept is this much).
 */
export const DETAIL_MAX = 240;

/**
 * `text` cut to `max` characters (with an ellipsis), on one line, without control characters
 * (the wire refuses them from nodes; this also covers text from the store and older rows).
 */
export function capDetail(text: string, max = DETAIL_MAX): string {
  return sanitizeWireText(text, max);
}

/** One site's readiness for a study (see SiteReadinessState). */
function readinessOf(n: Readonly<NodeRecord>, sessions: Pick<SessionRegistry, 'get'>, studyId: string, manifestHash: string): SiteReadiness {
  const session = sessions.get(n.id);
  const base = { nodeId: n.id, siteName: n.siteName };
  if (session === undefined) {
    return { ...base, online: false, readiness: 'OFFLINE', detail: n.lastSeenAt === null ? 'never connected' : `offline since ${new Date(n.lastSeenAt).toISOString()}`, lastHeartbeatAt: n.lastSeenAt };
  }
  const online = { ...base, online: true, lastHeartbeatAt: session.lastHeardAt };
  const r = session.readiness.get(studyId);
  if (r === undefined) return { ...online, readiness: 'NOT_REPORTED', detail: 'online, no readiness declared for this study yet' };
  if (r.manifestSha256 !== manifestHash) return { ...online, readiness: 'OTHER_MANIFEST', detail: `declared readiness for manifest ${r.manifestSha256.slice(0, 12)}…, not this study's` };
  // Enums arrive as names (the loader's `enums: String`); a number only from hand-made messages.
  const privacy = (r as ReadinessWithPrivacy).privacy;
  return { ...online, readiness: String(r.readiness).replace(/^READINESS_/, '') as SiteReadinessState, detail: capDetail(r.detail), ...(privacy === undefined ? {} : { privacy }) };
}

/** The readiness state alone, without building the site's record (counting every site is O(N) but cheap). */
function stateOf(n: Readonly<NodeRecord>, sessions: Pick<SessionRegistry, 'get'>, studyId: string, manifestHash: string): SiteReadinessState {
  const session = sessions.get(n.id);
  if (session === undefined) return 'OFFLINE';
  const r = session.readiness.get(studyId);
  if (r === undefined) return 'NOT_REPORTED';
  if (r.manifestSha256 !== manifestHash) return 'OTHER_MANIFEST';
  return String(r.readiness).replace(/^READINESS_/, '') as SiteReadinessState;
}

const collator = new Intl.Collator('en');

/** Every enrolled, unrevoked site's readiness for a study, by site name. */
export function siteReadiness(nodes: readonly NodeRecord[], sessions: Pick<SessionRegistry, 'get'>, studyId: string, manifestHash: string): SiteReadiness[] {
  return nodes
    .filter((n) => n.revokedAt === null)
    .map((n) => readinessOf(n, sessions, studyId, manifestHash))
    .sort((a, b) => collator.compare(a.siteName, b.siteName) || (a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0));
}

/**
 * Counts of every enrolled, unrevoked site per readiness state, and at most `max` sites: the
 * ones that are not READY first (what an operator acts on), then READY ones, each in enrolment
 * order. For views polled at scale: one pass, records built only for the sites listed, no sort.
 */
export function siteReadinessSummary(
  nodes: Iterable<Readonly<NodeRecord>>, sessions: Pick<SessionRegistry, 'get'>, studyId: string, manifestHash: string, max: number,
): { counts: Record<string, number>; sites: SiteReadiness[]; total: number } {
  const counts: Record<string, number> = {};
  const notReady: SiteReadiness[] = [];
  const ready: Readonly<NodeRecord>[] = [];
  let total = 0;
  for (const n of nodes) {
    if (n.revokedAt !== null) continue;
    total++;
    const state = stateOf(n, sessions, studyId, manifestHash);
    counts[state] = (counts[state] ?? 0) + 1;
    if (state !== 'READY' && notReady.length < max) notReady.push(readinessOf(n, sessions, studyId, manifestHash));
    else if (state === 'READY' && ready.length < max) ready.push(n);
  }
  const sites = [...notReady, ...ready.slice(0, Math.max(0, max - notReady.length)).map((n) => readinessOf(n, sessions, studyId, manifestHash))];
  return { counts, sites, total };
}

/** "clinic-a: COHORT_TOO_SMALL (fewer than …)" for one site; offline sites just say so. */
export function describeSite(s: SiteReadiness): string {
  if (s.readiness === 'OFFLINE') return `${s.siteName}: offline${s.detail === 'never connected' ? ' (never connected)' : ''}`;
  return `${s.siteName}: ${s.readiness}${s.detail === '' ? '' : ` (${s.detail})`}`;
}

/**
 * Why a round could not start: every site that is not READY with its readiness and reason,
 * then the READY ones by name (at most `maxSites` sites listed, the rest counted).
 */
export function describeReadiness(sites: readonly SiteReadiness[], needed: number, maxSites = 20): string {
  const ready = sites.filter((s) => s.readiness === 'READY');
  const notReady = sites.filter((s) => s.readiness !== 'READY');
  const listed = notReady.slice(0, maxSites).map(describeSite);
  if (notReady.length > maxSites) listed.push(`and ${notReady.length - maxSites} more not READY`);
  const head = `${ready.length} of ${needed} READY clinic(s) needed`;
  const readyNames = ready.length === 0 ? '' : `; READY: ${ready.slice(0, maxSites).map((s) => s.siteName).join(', ')}${ready.length > maxSites ? ` and ${ready.length - maxSites} more` : ''}`;
  return sites.length === 0 ? `${head}; no clinic is enrolled` : `${head} — ${listed.join('; ')}${readyNames}`;
}
