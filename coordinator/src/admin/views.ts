import { bundleLength, validateManifest, type Normalization, type NormalizationSource, type StudyManifest } from '@fedlhs/core';
import type { Coordinator } from '../coordinator.js';
import { withheldSites } from '../disclosure.js';
import { capDetail, describeSitePrivacy, siteReadinessSummary, type SiteReadiness, type SitePrivacyBudget } from '../readiness.js';
import type { ContributionRecord, CoordinatorStore, MetricRecord, NodeSummaryRecord, PageRequest, RoundTaskCount, StudyRecord, TaskFilter, TaskKindName, TaskRecord, TaskStateName } from '../store.js';

/** Public view of a study for operators. */
export function studySummary(coordinator: Coordinator, s: StudyRecord): Record<string, unknown> {
  const manifest = JSON.parse(s.manifestJson) as { rounds: number };
  const current = coordinator.runner(s.id)?.current;
  return {
    id: s.id, name: s.name, state: s.state, reason: s.reason, manifestSha256: s.manifestHash, totalRounds: manifest.rounds,
    lastCommittedRound: s.lastCommittedRound, current: current ?? null, createdAt: new Date(s.createdAt).toISOString(),
    endedAt: s.endedAt === null ? null : new Date(s.endedAt).toISOString(),
  };
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/** Task states that mean a clinic did not deliver: shown as failures, per site. */
export const PROBLEM_STATES: readonly TaskStateName[] = ['FAILED', 'DECLINED', 'REJECTED'];

/**
 * A task of a node that ended without a result (failed, declined, rejected), or a rejected
 * upload: `lastError` of the status and node views, and the node view's `failures`.
 */
export interface NodeFailureView {
  studyId: string;
  round: number;
  attempt: number;
  /** The task's kind (null for a rejected upload whose task is not known). */
  kind: TaskKindName | null;
  state: 'FAILED' | 'DECLINED' | 'REJECTED';
  /** The agent's reason (failed, declined) or the coordinator's (rejected), at most 240 characters. */
  reason: string;
  /** ISO time it ended (null for tasks that ended before end times were recorded). */
  at: string | null;
}

const taskFailure = (t: TaskRecord): NodeFailureView => ({
  studyId: t.studyId, round: t.round, attempt: t.attempt, kind: t.kind, state: t.state as NodeFailureView['state'],
  reason: capDetail(t.detail ?? '(no reason given)'), at: iso(t.endedAt),
});

/** A node's tasks that ended without a result, most recent first. */
export async function nodeFailures(coordinator: Coordinator, nodeId: string, limit = 50): Promise<NodeFailureView[]> {
  return (await coordinator.store.listNodeTasks(nodeId, PROBLEM_STATES, limit)).map(taskFailure);
}

/**
 * The later of a node's last task that ended without a result and its last rejected upload (a
 * rejection for a bad digest, say, leaves the task open for a good re-send).
 */
async function lastFailure(coordinator: Coordinator, nodeId: string, task: TaskRecord | null, rejected: ContributionRecord | null): Promise<NodeFailureView | null> {
  const taskAt = task === null ? -Infinity : (task.endedAt ?? task.createdAt);
  if (rejected !== null && rejected.receivedAt > taskAt) {
    const owner = await coordinator.store.getTask(rejected.taskId);
    return {
      studyId: rejected.studyId, round: rejected.round, attempt: rejected.attempt, kind: owner?.nodeId === nodeId ? owner.kind : null, state: 'REJECTED',
      reason: capDetail(`${rejected.reasonCode ?? 'REJECTED'}: ${rejected.reason ?? ''}`), at: iso(rejected.receivedAt),
    };
  }
  return task === null ? null : taskFailure(task);
}

/** One node with its live state (from its session, in memory) and its history (from its summary row). */
async function nodeView(coordinator: Coordinator, stored: NodeSummaryRecord): Promise<Record<string, unknown>> {
  const session = coordinator.sessions.get(stored.id);
  // Last-seen times are written behind (enrolment.ts): the in-memory directory is newer.
  const live = coordinator.nodes.get(stored.id);
  const n = live === undefined ? stored : { ...stored, lastSeenAt: live.lastSeenAt, agentVersion: live.agentVersion, trainingBackend: live.trainingBackend, revokedAt: live.revokedAt };
  return {
    id: n.id, siteName: n.siteName, online: session !== undefined, revoked: n.revokedAt !== null,
    lastSeenAt: iso(n.lastSeenAt), lastHeartbeatAt: session === undefined ? iso(n.lastSeenAt) : iso(session.lastHeardAt),
    connectedAt: session === undefined ? null : iso(session.connectedAt),
    agentVersion: session?.agent.agentVersion ?? n.agentVersion, trainingBackend: session?.agent.trainingBackend ?? n.trainingBackend,
    readiness: session === undefined ? {} : Object.fromEntries([...session.readiness].map(([k, v]) => [k, { readiness: v.readiness, detail: capDetail(v.detail) }])),
    roundsContributed: n.roundsContributed,
    // A readiness that is not READY is a state (in `readiness`), not an error.
    lastError: await lastFailure(coordinator, n.id, n.lastProblemTask, n.lastRejection),
  };
}

/** Default and largest page of nodes in the status view. */
export const NODE_PAGE_DEFAULT = 500;

/**
 * One page of nodes (enrolment order) as the status API and dashboard show them: one indexed
 * query per page plus live session fields from memory, whatever the number of clinics.
 */
export async function nodePage(coordinator: Coordinator, page: PageRequest): Promise<{ nodes: Record<string, unknown>[]; next: string | null }> {
  const { items, next } = await coordinator.store.listNodeSummaries(page);
  return { nodes: await Promise.all(items.map((n) => nodeView(coordinator, n))), next };
}

/** Every node, page by page (tests and small networks; the API serves pages). */
export async function nodeViews(coordinator: Coordinator): Promise<Record<string, unknown>[]> {
  const all: Record<string, unknown>[] = [];
  let after: string | undefined;
  do {
    const page = await nodePage(coordinator, { limit: 1000, ...(after === undefined ? {} : { after }) });
    all.push(...page.nodes);
    after = page.next ?? undefined;
  } while (after !== undefined);
  return all;
}

/** One node's view, or undefined if no such node is enrolled. */
export async function singleNodeView(coordinator: Coordinator, nodeId: string): Promise<Record<string, unknown> | undefined> {
  const n = await coordinator.store.getNode(nodeId);
  if (n === undefined) return undefined;
  const contributions = await coordinator.store.listContributions({ nodeId });
  const [lastProblemTask] = await coordinator.store.listNodeTasks(nodeId, PROBLEM_STATES, 1);
  return nodeView(coordinator, {
    ...n,
    roundsContributed: new Set(contributions.filter((c) => c.accepted).map((c) => `${c.studyId}/${c.round}`)).size,
    lastRejection: [...contributions].reverse().find((c) => !c.accepted) ?? null,
    lastProblemTask: lastProblemTask ?? null,
  });
}

/** Counts of the status view's header: enrolled, revoked and online clinics. */
export async function nodeCounts(coordinator: Coordinator): Promise<{ total: number; revoked: number; online: number }> {
  const { total, revoked } = await coordinator.store.countNodes();
  return { total, revoked, online: coordinator.sessions.size };
}

/** A site's readiness for a running study, as the status and study views show it. */
export interface SiteReadinessView {
  nodeId: string;
  siteName: string;
  online: boolean;
  /** READY, NOT_APPROVED, COHORT_TOO_SMALL, FEATURE_SPEC_UNSUPPORTED, DATA_ERROR, WITHDRAWN, or OFFLINE / NOT_REPORTED / OTHER_MANIFEST. */
  readiness: string;
  /** The agent's reason (at most 240 characters), or the coordinator's words. */
  detail: string;
  lastHeartbeatAt: string | null;
  /**
   * The clinic's privacy accounting for the study as its readiness carried it (proto PrivacyBudget):
   * epsilons null where unbounded (rounds that did not protect the clinic), and `text` in words.
   */
  privacy?: { epsilonSpent: number | null; epsilonStudyLimit: number; epsilonLifetimeSpent: number | null; epsilonLifetimeLimit: number; delta: number; text: string };
}

/** A site's PrivacyBudget for JSON (which has no Infinity). */
function privacyView(p: SitePrivacyBudget): NonNullable<SiteReadinessView['privacy']> {
  const f = (x: number): number | null => (Number.isFinite(x) ? x : null);
  return { epsilonSpent: f(p.epsilonSpent), epsilonStudyLimit: p.epsilonStudyLimit, epsilonLifetimeSpent: f(p.epsilonLifetimeSpent), epsilonLifetimeLimit: p.epsilonLifetimeLimit, delta: p.delta, text: describeSitePrivacy(p) };
}

/** Readiness of a running study's sites: how many are READY of the minimum, and the deadline. */
export interface StudyReadinessView {
  /** clients.min */
  needed: number;
  ready: number;
  /** When the waiting round fails the study (deadlines.readinessSeconds), if it is waiting and has one. */
  deadline: string | null;
  /** Enrolled, unrevoked sites per readiness state (all of them, whatever `sites` shows). */
  counts: Record<string, number>;
  /** Every site by name; or, when capped, the sites that are not READY first, in enrolment order. */
  sites: SiteReadinessView[];
  /** Sites left out of `sites` by the cap (0 when all are listed). */
  sitesOmitted: number;
}

/**
 * The readiness view of a study, or null unless it is RUNNING. `maxSites` caps the site list
 * (the status view polls it, so it must not grow with the network): the sites that are not
 * READY come first, as they are the ones an operator acts on, and the rest are counted.
 */
export async function studyReadiness(coordinator: Coordinator, study: StudyRecord, opts: { maxSites?: number } = {}): Promise<StudyReadinessView | null> {
  if (study.state !== 'RUNNING') return null;
  const manifest = JSON.parse(study.manifestJson) as { clients: { min: number } };
  const current = coordinator.runner(study.id)?.current;
  let counts: Record<string, number>;
  let shown: SiteReadiness[];
  let total: number;
  if (opts.maxSites === undefined) {
    shown = await coordinator.siteReadiness(study);
    counts = {};
    for (const x of shown) counts[x.readiness] = (counts[x.readiness] ?? 0) + 1;
    total = shown.length;
  } else {
    ({ counts, sites: shown, total } = siteReadinessSummary(coordinator.nodes.values(), coordinator.sessions, study.id, study.manifestHash, opts.maxSites));
  }
  return {
    needed: manifest.clients.min, ready: counts.READY ?? 0,
    deadline: current?.state === 'WAITING_FOR_NODES' && current.deadline > 0 ? iso(current.deadline) : null,
    counts, sites: shown.map(({ privacy, ...x }) => ({ ...x, lastHeartbeatAt: iso(x.lastHeartbeatAt), ...(privacy === undefined ? {} : { privacy: privacyView(privacy) }) })), sitesOmitted: total - shown.length,
  };
}

/** A task that ended without a result, in a round attempt of the study view's timeline. */
export interface TaskFailureView {
  nodeId: string;
  siteName: string;
  kind: TaskKindName;
  state: 'FAILED' | 'DECLINED' | 'REJECTED';
  reason: string;
  at: string | null;
}

/** Longest list (stragglers, rejections, failures) a timeline row carries; its count field has the total. */
export const TIMELINE_LIST_MAX = 100;

/** Every task of a round matching the filter, page by page. */
async function allTasks(store: CoordinatorStore, filter: TaskFilter): Promise<TaskRecord[]> {
  const out: TaskRecord[] = [];
  let after: string | undefined;
  do {
    const page = await store.listTasksPage(filter, { limit: 1000, ...(after === undefined ? {} : { after }) });
    out.push(...page.items);
    after = page.next ?? undefined;
  } while (after !== undefined);
  return out;
}

function taskFailures(tasks: readonly TaskRecord[], siteOf: (nodeId: string) => string): TaskFailureView[] {
  return tasks
    .filter((t) => PROBLEM_STATES.includes(t.state))
    .map((t) => ({ nodeId: t.nodeId, siteName: siteOf(t.nodeId), kind: t.kind, state: t.state as TaskFailureView['state'], reason: capDetail(t.detail ?? '(no reason given)'), at: iso(t.endedAt) }));
}

/**
 * A node's contribution history, with example counts below the study's minCellCount shown
 * as null (a small clinic's cohort size is a small cell).
 */
export async function nodeContributions(coordinator: Coordinator, nodeId: string): Promise<Record<string, unknown>[]> {
  const minCell = new Map<string, number>();
  for (const s of await coordinator.store.listStudies()) minCell.set(s.id, (JSON.parse(s.manifestJson) as { data: { minCellCount: number } }).data.minCellCount);
  return (await coordinator.store.listContributions({ nodeId })).map((c) => ({ ...c, numExamples: c.numExamples >= (minCell.get(c.studyId) ?? 10) ? c.numExamples : null }));
}

/** How the study's features are scaled, as the study view shows it (see studyDetail). */
export interface NormalizationView {
  method: 'federated-zscore';
  /** The manifest's data.normalizationFallback ('fail' when absent). */
  fallback: 'fail' | 'range' | 'exclude';
  /** Clinics whose statistics were combined (null for studies from before it was recorded). */
  clinics: number | null;
  features: { name: string; mean: number; std: number; source: NormalizationSource; withheldAt: number | null }[];
  /** The features not scaled by federated statistics (withheld at every clinic), in feature order. */
  fallbackFeatures: { name: string; source: Exclude<NormalizationSource, 'federated'>; withheldAt: number | null }[];
}

/** The normalisation view of a study, or null if it has no federated normalisation (yet). */
export function normalizationView(manifest: StudyManifest, parameters: { normalization?: Normalization } | null): NormalizationView | null {
  if (manifest.data.normalization !== 'federated-zscore' || parameters?.normalization === undefined) return null;
  const features = parameters.normalization.features.map((f) => ({
    name: f.name, mean: f.mean, std: f.std, source: f.source ?? (f.excluded === true ? 'excluded' : 'federated'), withheldAt: f.withheldAt ?? null,
  }));
  return {
    method: 'federated-zscore', fallback: manifest.data.normalizationFallback ?? 'fail', clinics: parameters.normalization.clinics ?? null, features,
    fallbackFeatures: features.flatMap((f) => (f.source === 'federated' ? [] : [{ name: f.name, source: f.source, withheldAt: f.withheldAt }])),
  };
}

/**
 * Metrics as operators may see them: per (round, phase), the per-site figures withheld by the
 * small-cell rule (disclosure.ts) are left out, and so is a global value over fewer than
 * minCellCount examples. New rounds are stored that way already; this also covers older ones.
 */
function visibleMetrics<M extends MetricRecord & { round: number }>(metrics: readonly M[], minCell: number): M[] {
  const groups = new Map<string, M[]>();
  for (const m of metrics) {
    const key = `${m.round}/${m.phase}`;
    groups.set(key, [...(groups.get(key) ?? []), m]);
  }
  const hidden = new Set<M>();
  for (const group of groups.values()) {
    const sites = group.filter((m) => m.nodeId !== null);
    const withheld = withheldSites(sites.map((m) => ({ nodeId: m.nodeId!, numExamples: m.numExamples })), minCell);
    for (const m of group) if (m.nodeId === null ? m.numExamples < minCell : withheld.has(m.nodeId)) hidden.add(m);
  }
  return metrics.filter((m) => !hidden.has(m));
}

/** A study's detail: rounds as a timeline, metrics, rejections, cohort statistics, normalisation. */
export async function studyDetail(coordinator: Coordinator, study: StudyRecord): Promise<Record<string, unknown>> {
  const store = coordinator.store;
  const [rounds, storedMetrics, contributions, stats, nodes] = await Promise.all([
    store.listRounds(study.id), store.listMetrics(study.id), store.listContributions({ studyId: study.id }), store.listStatistics(study.id), coordinator.nodes.list(),
  ]);
  const manifest = validateManifest(JSON.parse(study.manifestJson));
  const k = manifest.data.minCellCount;
  // The study view shows the validation ('evaluation') and training figures it always has: the
  // test part's rows and the Performance JSON belong to the release views (release-views.ts).
  const metrics = visibleMetrics(storedMetrics.filter((m) => m.phase !== 'test').map(({ performance: _, ...m }) => m), k);
  const modelBytes = bundleLength(coordinator.checkpoints.loadSpecs(study.id)) * 4;
  const siteNames = new Map(nodes.map((n) => [n.id, n.siteName]));
  const siteOf = (nodeId: string): string => siteNames.get(nodeId) ?? nodeId;
  // The timeline is built from per-round counts (GROUP BY on indexed columns) and short lists
  // read only when a count says there is something to list: never every task of every round.
  const [taskCounts, totals, rejections] = await Promise.all([store.roundTaskCounts(study.id), store.contributionTotals(study.id), store.rejectionsByReason(study.id)]);
  const countsOf = new Map<number, RoundTaskCount[]>();
  for (const c of taskCounts) countsOf.set(c.roundId, [...(countsOf.get(c.roundId) ?? []), c]);
  const count = (roundId: number, match: (c: RoundTaskCount) => boolean): number => (countsOf.get(roundId) ?? []).filter(match).reduce((n, c) => n + c.count, 0);
  const totalsOf = new Map(totals.map((t) => [`${t.round}/${t.attempt}`, t]));
  const timeline = [];
  const metricsWithheld: { round: number; phase: 'evaluation'; nodeId: string }[] = [];
  for (const r of rounds.filter((x) => x.round > 0)) {
    const ended = r.state === 'COMMITTED' || r.state === 'FAILED';
    const t = totalsOf.get(`${r.round}/${r.attempt}`);
    if (r.state === 'COMMITTED') {
      // Sites that evaluated the committed model but whose figure is not shown: small cells.
      const evaluated = count(r.id, (c) => c.kind === 'EVALUATE' && c.state === 'ACCEPTED');
      const shown = new Set(metrics.filter((m) => m.round === r.round && m.phase === 'evaluation' && m.nodeId !== null).map((m) => m.nodeId));
      if (evaluated > shown.size) {
        for (const task of await allTasks(store, { roundId: r.id, kinds: ['EVALUATE'], states: ['ACCEPTED'] })) {
          if (!shown.has(task.nodeId)) metricsWithheld.push({ round: r.round, phase: 'evaluation', nodeId: task.nodeId });
        }
      }
    }
    // Training's tasks: TRAIN, or with secure aggregation the masked inputs (the clinics' updates).
    const trainingKind = (kind: TaskKindName): boolean => kind === 'TRAIN' || kind === 'SECAGG_MASKED_INPUT';
    const stragglerCount = ended || r.state === 'AGGREGATING' || r.state === 'EVALUATING' ? count(r.id, (c) => trainingKind(c.kind) && (c.state === 'CANCELLED' || c.state === 'ASSIGNED')) : 0;
    const problemCount = count(r.id, (c) => PROBLEM_STATES.includes(c.state));
    const rejected = (t?.rejected ?? 0) === 0 ? [] : (await store.listContributionsPage({ studyId: study.id, round: r.round, attempt: r.attempt, accepted: false }, { limit: TIMELINE_LIST_MAX })).items;
    timeline.push({
      round: r.round, attempt: r.attempt, state: r.state, reason: r.reason, startedAt: iso(r.startedAt), endedAt: iso(r.endedAt),
      durationMs: r.endedAt === null ? null : r.endedAt - r.startedAt, participants: r.participants,
      accepted: count(r.id, (c) => trainingKind(c.kind) && c.state === 'ACCEPTED'),
      // Selected clinics that had not reported when the training phase closed (at most TIMELINE_LIST_MAX listed).
      stragglers: stragglerCount === 0 ? [] : (await store.listTasksPage({ roundId: r.id, kinds: ['TRAIN', 'SECAGG_MASKED_INPUT'], states: ['CANCELLED', 'ASSIGNED'] }, { limit: TIMELINE_LIST_MAX })).items.map((x) => x.nodeId),
      stragglerCount,
      rejected: rejected.map((c) => ({ nodeId: c.nodeId, reasonCode: c.reasonCode, reason: c.reason })),
      rejectedCount: t?.rejected ?? 0,
      // Tasks of the attempt that ended without a result, by site, with their reasons (at most TIMELINE_LIST_MAX listed).
      failures: problemCount === 0 ? [] : taskFailures((await store.listTasksPage({ roundId: r.id, states: PROBLEM_STATES }, { limit: TIMELINE_LIST_MAX })).items, siteOf),
      failureCount: problemCount,
      bytesIn: t?.bytes ?? 0,
      // Model payloads handed out for this attempt's tasks that got as far as a result.
      // (Of the secure-aggregation stages only the masked input hands out a model.)
      bytesOut: count(r.id, (c) => (c.kind === 'TRAIN' || c.kind === 'EVALUATE' || c.kind === 'SECAGG_MASKED_INPUT') && (c.state === 'ACCEPTED' || c.state === 'REJECTED')) * modelBytes,
    });
  }
  const rejectionsByReason: Record<string, number> = {};
  for (const c of rejections) if (c.reasonCode !== null) rejectionsByReason[c.reasonCode] = (rejectionsByReason[c.reasonCode] ?? 0) + c.count;
  // Cohort figures below minCellCount are never shown (agents report them as 0 / suppressed).
  const statistics = stats.map((s) => {
    const r = JSON.parse(s.report) as { rows: number; positives: number; suppressed: boolean };
    const rows = r.rows >= k ? r.rows : null;
    const positives = r.suppressed || rows === null || r.positives < k || rows - r.positives < k ? null : r.positives;
    return { nodeId: s.nodeId, rows, positives, prevalence: positives === null || rows === null ? null : positives / rows };
  });
  const parameters = study.parameters === null ? null : (JSON.parse(study.parameters) as { normalization?: Normalization });
  return {
    ...studySummary(coordinator, study), manifest: JSON.parse(study.manifestJson), parameters,
    normalization: normalizationView(manifest, parameters),
    rounds, timeline, metrics, metricsWithheld,
    contributions: contributions.map((c) => ({ ...c, numExamples: c.numExamples >= k ? c.numExamples : null })),
    rejectionsByReason, statistics, sites: Object.fromEntries(nodes.map((n) => [n.id, n.siteName])),
    readiness: await studyReadiness(coordinator, study),
    release: await studyRelease(coordinator, study),
  };
}

/**
 * The study's release for its detail: the release made of it, or why it could not be made (the
 * builder keeps the last failure until a later attempt succeeds), or null (none, and no failure:
 * not COMPLETED, or not built yet).
 */
export async function studyRelease(coordinator: Coordinator, study: StudyRecord): Promise<{ studyName: string; version: number; round: number } | { failed: string } | null> {
  const made = await coordinator.store.releaseOfStudy(study.id);
  if (made !== undefined) return { studyName: made.studyName, version: made.version, round: made.round };
  const failure = coordinator.releaseFailure(study.id);
  return failure === undefined ? null : { failed: failure.message };
}
