import { bundleLength } from '@fedlhs/core';
import type { Coordinator } from '../coordinator.js';
import type { StudyRecord } from '../store.js';

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

/** Every node with its live state and history, as the status API and dashboard show it. */
export async function nodeViews(coordinator: Coordinator): Promise<Record<string, unknown>[]> {
  const nodes = await coordinator.store.listNodes();
  return Promise.all(
    nodes.map(async (n) => {
      const session = coordinator.sessions.get(n.id);
      const contributions = await coordinator.store.listContributions({ nodeId: n.id });
      const accepted = new Set(contributions.filter((c) => c.accepted).map((c) => `${c.studyId}/${c.round}`));
      const lastRejected = [...contributions].reverse().find((c) => !c.accepted);
      const notReady = session === undefined ? undefined : [...session.readiness.values()].find((r) => r.readiness !== 'READINESS_READY' && r.detail !== '');
      return {
        id: n.id, siteName: n.siteName, online: session !== undefined, revoked: n.revokedAt !== null,
        lastSeenAt: iso(n.lastSeenAt), lastHeartbeatAt: session === undefined ? iso(n.lastSeenAt) : iso(session.lastHeardAt),
        agentVersion: session?.agent.agentVersion ?? n.agentVersion, trainingBackend: session?.agent.trainingBackend ?? n.trainingBackend,
        readiness: session === undefined ? {} : Object.fromEntries([...session.readiness].map(([k, v]) => [k, { readiness: v.readiness, detail: v.detail }])),
        roundsContributed: accepted.size,
        lastError: lastRejected !== undefined ? `${lastRejected.reasonCode}: ${lastRejected.reason}` : (notReady?.detail ?? null),
      };
    }),
  );
}

/** A study's detail: rounds as a timeline, metrics, rejections, cohort statistics. */
export async function studyDetail(coordinator: Coordinator, study: StudyRecord): Promise<Record<string, unknown>> {
  const store = coordinator.store;
  const [rounds, metrics, contributions, stats, nodes] = await Promise.all([
    store.listRounds(study.id), store.listMetrics(study.id), store.listContributions({ studyId: study.id }), store.listStatistics(study.id), store.listNodes(),
  ]);
  const modelBytes = bundleLength(coordinator.checkpoints.loadSpecs(study.id)) * 4;
  const timeline = [];
  for (const r of rounds.filter((x) => x.round > 0)) {
    const tasks = await store.listTasks(r.id);
    const train = tasks.filter((t) => t.kind === 'TRAIN');
    const ended = r.state === 'COMMITTED' || r.state === 'FAILED';
    const mine = contributions.filter((c) => c.round === r.round && c.attempt === r.attempt);
    timeline.push({
      round: r.round, attempt: r.attempt, state: r.state, reason: r.reason, startedAt: iso(r.startedAt), endedAt: iso(r.endedAt),
      durationMs: r.endedAt === null ? null : r.endedAt - r.startedAt, participants: r.participants,
      accepted: train.filter((t) => t.state === 'ACCEPTED').length,
      // Selected clinics that had not reported when the training phase closed.
      stragglers: ended || r.state === 'AGGREGATING' || r.state === 'EVALUATING' ? train.filter((t) => t.state === 'CANCELLED' || t.state === 'ASSIGNED').map((t) => t.nodeId) : [],
      rejected: mine.filter((c) => !c.accepted).map((c) => ({ nodeId: c.nodeId, reasonCode: c.reasonCode, reason: c.reason })),
      bytesIn: mine.reduce((s, c) => s + c.bytes, 0),
      // Model payloads handed out for this attempt's tasks that got as far as a result.
      bytesOut: tasks.filter((t) => t.kind !== 'STATISTICS' && (t.state === 'ACCEPTED' || t.state === 'REJECTED')).length * modelBytes,
    });
  }
  const rejectionsByReason: Record<string, number> = {};
  for (const c of contributions) if (!c.accepted && c.reasonCode !== null) rejectionsByReason[c.reasonCode] = (rejectionsByReason[c.reasonCode] ?? 0) + 1;
  const statistics = stats.map((s) => {
    const r = JSON.parse(s.report) as { rows: number; positives: number; suppressed: boolean };
    return { nodeId: s.nodeId, rows: r.rows, positives: r.suppressed ? null : r.positives, prevalence: r.suppressed || r.rows === 0 ? null : r.positives / r.rows };
  });
  return {
    ...studySummary(coordinator, study), manifest: JSON.parse(study.manifestJson), parameters: study.parameters === null ? null : JSON.parse(study.parameters),
    rounds, timeline, metrics, contributions, rejectionsByReason, statistics, sites: Object.fromEntries(nodes.map((n) => [n.id, n.siteName])),
  };
}
