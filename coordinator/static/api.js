// Client for the coordinator's admin HTTP API (/api/v1). The session is an HttpOnly cookie set by
// POST /api/v1/session; every request is same-origin so the browser sends it.

/**
 * @typedef {{ name: string, role: 'viewer' | 'admin' }} Operator
 * @typedef {'WAITING_FOR_NODES'|'STATISTICS'|'TRAINING'|'AGGREGATING'|'EVALUATING'|'COMMITTED'|'FAILED'} RoundState
 * @typedef {{ roundId: string | number, round: number, attempt: number, state: RoundState, deadline: string | number | null }} CurrentRound deadline: ISO, or epoch ms as the coordinator sends it today
 * @typedef {{ nodeId: string, siteName?: string, online?: boolean, readiness: string, detail: string, lastHeartbeatAt?: string | null }} SiteReadiness
 *   readiness without the READINESS_ prefix, or the coordinator's OFFLINE / NOT_REPORTED / OTHER_MANIFEST
 * @typedef {{ needed: number, ready: number, deadline: string | null, sites: SiteReadiness[] }} StudyReadiness while RUNNING; deadline: when a round waiting for READY clinics fails the study
 * @typedef {{ id: string, name: string, state: 'RUNNING'|'COMPLETED'|'STOPPED'|'FAILED', reason: string | null,
 *   manifestSha256: string, totalRounds: number, lastCommittedRound: number, current: CurrentRound | null,
 *   createdAt: string, endedAt: string | null, readiness?: StudyReadiness | null }} StudySummary readiness: in /status and the study view
 * @typedef {{ readiness: string, detail: string }} ReadinessEntry readiness is a proto Readiness name, e.g. 'READINESS_NOT_APPROVED'
 * @typedef {{ studyId?: string, round?: number, attempt?: number, kind?: string | null, state?: 'FAILED' | 'DECLINED' | 'REJECTED', reason: string, at?: string | null }} NodeFailure
 * @typedef {{ id: string, siteName: string, online: boolean, revoked: boolean, lastSeenAt: string | null,
 *   lastHeartbeatAt: string | null, agentVersion: string, trainingBackend: string,
 *   readiness: Record<string, ReadinessEntry>, roundsContributed: number,
 *   lastError: NodeFailure | string | null, connectedAt?: string | null }} ClinicNode
 *   lastError: the last failed/declined/rejected task or upload (plain text from older coordinators)
 * @typedef {{ studyId?: string, round?: number, attempt?: number, nodeId?: string, siteName?: string, kind?: string | null, state?: string,
 *   reason?: string | null, at?: string | number | null }} TaskFailure a FAILED, DECLINED or REJECTED task and why
 * @typedef {{ taskId: string, studyId: string, round: number, attempt: number, nodeId: string, numExamples: number | null,
 *   bytes: number, accepted: boolean, reasonCode: string | null, reason: string | null, receivedAt: number | string }} Contribution
 * @typedef {ClinicNode & { contributions?: Contribution[], failures?: NodeFailure[] }} NodeDetail failures: most recent first
 * @typedef {{ coordinator: { version: string, uptimeSeconds: number }, studies: StudySummary[], nodes: ClinicNode[],
 *   summary?: { nodes: { total: number, revoked: number, online: number } }, nodesNext?: string | null }} Status
 *   nodes: one page (the first 500 in enrolment order); summary counts every node; nodesNext: cursor of the next page
 * @typedef {{ round: number, attempt: number, state: RoundState, reason: string | null, startedAt: string,
 *   endedAt: string | null, durationMs: number | null, participants: number, accepted: number,
 *   stragglers: string[], rejected: { nodeId: string, reasonCode: string, reason: string }[],
 *   bytesIn: number, bytesOut: number, failures?: TaskFailure[] }} TimelineRow failures: the attempt's FAILED/DECLINED/REJECTED tasks with reasons
 * @typedef {{ round: number, nodeId: string | null, phase: 'evaluation' | 'training', numExamples: number,
 *   loss: number, accuracy: number, auc?: number }} Metric
 * @typedef {{ name: string, mean: number, std: number, source: 'federated' | 'fallback-range' | 'excluded', withheldAt: number | null }} NormalizedFeature
 * @typedef {{ method: 'federated-zscore', fallback: 'fail' | 'range' | 'exclude', clinics: number | null, features: NormalizedFeature[],
 *   fallbackFeatures: { name: string, source: 'fallback-range' | 'excluded', withheldAt: number | null }[] }} NormalizationView
 * @typedef {StudySummary & { manifest: any, parameters: any, normalization: NormalizationView | null, timeline: TimelineRow[], metrics: Metric[],
 *   metricsWithheld?: { round: number, phase: 'evaluation', nodeId: string }[],
 *   rejectionsByReason: Record<string, number>, statistics: { nodeId: string, rows: number | null, prevalence: number | null }[],
 *   sites: Record<string, string> }} StudyDetail
 * @typedef {{ at: string, operator: string, action: string, target: string, detail: unknown }} AuditAction
 * @typedef {{ kind: 'study' | 'round' | 'node' | 'release' | 'series', studyId?: string, nodeId?: string, seriesName?: string }} ChangeEvent
 * @typedef {{ numExamples: number, auc: number | null, aucInterval: [number, number] | null }} FigureSummary pooled published figures
 * @typedef {{ numExamples: number | null, positives: number | null, auc: number | null, aucInterval: [number, number] | null, brier: number | null,
 *   calibrationSlope: number | null, calibrationIntercept: number | null, meanPredicted: number | null, observedRate: number | null }} LiveFigures
 *   null: withheld (small cells) or not measured
 * @typedef {{ status: 'ok' | 'drift' | 'insufficient', reason: string, withheld: boolean, live: LiveFigures }} DriftVerdict
 * @typedef {DriftVerdict & { nodeId: string, siteName: string, measuredAt: string, exportFingerprint: string }} SiteDrift
 * @typedef {{ studyName: string, version: number, studyId: string, round: number, createdAt: string, parentVersion: number | null, aliases: string[],
 *   selection: { rule: string, reason: string, warnings: string[] } | null, validation: FigureSummary | null, test: FigureSummary | null,
 *   live: { reference: { testAuc: number | null, testAucInterval: [number, number] | null }, pooled: (DriftVerdict & { sites: number }) | null, sites: SiteDrift[] } | null,
 *   error: string | null }} ReleaseSummary error: why its figures cannot be shown
 * @typedef {{ studyName: string, alias: string, version: number, setBy: string, setAt: string }} ReleaseAlias
 * @typedef {{ releases: ReleaseSummary[], aliases: ReleaseAlias[] }} ReleaseList
 * @typedef {{ numExamples: number, positives: number | null, auc: number | null, aucInterval: [number, number] | null, brier: number | null,
 *   calibrationSlope: number | null, calibrationIntercept: number | null }} PublishedPerformance a figure set of release.json (small cells null)
 * @typedef {{ pooled: PublishedPerformance | null, sites: { site: string, performance: PublishedPerformance }[], withheldSites: number, sitesWithoutFigures: string[] }} ReleasePart
 * @typedef {ReleaseSummary & { manifestSha256: string, files: { name: string, sha256: string, size: number, url: string }[], reports: number,
 *   descriptor: { metrics: { validation: ReleasePart, test: ReleasePart, minCellCount: number }, lineage: { signer: string },
 *     modelCard: { intendedUse: string, outcome: string, population: string, limitations: string[] } } | null }} ReleaseDetail
 *   descriptor: release.json (only the fields the dashboard reads are typed here)
 * @typedef {{ rule: 'auto', minDelta: number, maxSiteLoss: number, minSites: number } | { rule: 'operator' }} PromotionRule
 * @typedef {{ name: string, state: 'active' | 'paused', templateSha256: string, description: string, schedule: string | null,
 *   start: 'champion' | 'scratch' | null, promotion: PromotionRule | null, runCount: number,
 *   currentRun: { run: number, studyId: string, studyState: string } | null, championVersion: number | null,
 *   nextRunAt: string | null, nextRunNote: string | null, createdBy: string, createdAt: string, updatedAt: string, error: string | null }} SeriesSummary
 *   nextRunNote: why there is no next run time (paused, a run in progress, a data trigger)
 * @typedef {{ promote: boolean, reasons: string[], pooled?: { difference: number, standardError: number, interval: [number, number], sites: number, excluded: number },
 *   tooSmall: string[], worse: string[] }} PromotionEvidence
 * @typedef {{ id: number, seriesName: string, run: number | null, fromVersion: number | null, toVersion: number, action: 'promote' | 'keep' | 'rollback',
 *   decidedBy: string, at: string, evidence: PromotionEvidence | null, error: string | null }} SeriesPromotion decidedBy: 'rule' or 'operator:<name>'
 * @typedef {{ seriesName: string, run: number, studyId: string, scheduledAt: string, startedAt: string, trigger: string, championVersion: number | null,
 *   templateSha256: string | null, studyState: string, releasedVersion: number | null,
 *   decision: Omit<SeriesPromotion, 'error'> | null }} SeriesRun
 * @typedef {{ site: string, numExamples: number, auc: number | null, aucInterval: [number, number] | null, difference: number | null,
 *   differenceInterval: [number, number] | null, championAuc: number | null }} SeriesSitePoint
 * @typedef {{ run: number, studyId: string, version: number, round: number, championVersion: number | null, minCellCount: number | null,
 *   pooled: { numExamples: number, auc: number | null, aucInterval: [number, number] | null } | null, sites: SeriesSitePoint[],
 *   withheldSites: number, error: string | null }} SeriesRunPerformance
 * @typedef {SeriesSummary & { template: unknown, varying: string[], runs: SeriesRun[], promotions: SeriesPromotion[], performance: SeriesRunPerformance[] }} SeriesDetail
 */

/** An API call that failed; `code` is the server's stable error code, `message` is for people. */
export class ApiError extends Error {
  /** @param {number} status HTTP status, 0 when the server could not be reached @param {string} code @param {string} message */
  constructor(status, code, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

/** @type {() => void} */
let onUnauthenticated = () => {};

/**
 * Called when any call but a login attempt answers 401: the session expired or was revoked.
 * @param {() => void} handler
 */
export function setUnauthenticatedHandler(handler) {
  onUnauthenticated = handler;
}

/**
 * @param {'GET' | 'POST' | 'PUT' | 'DELETE'} method
 * @param {string} path
 * @param {unknown} [body]
 * @param {{ quiet401?: boolean }} [options] quiet401: a 401 is an answer, not an expired session
 */
async function request(method, path, body, options = {}) {
  /** @type {Response} */
  let res;
  try {
    res = await fetch(path, {
      method,
      credentials: 'same-origin',
      headers: body === undefined ? { accept: 'application/json' } : { accept: 'application/json', 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, 'UNAVAILABLE', 'Cannot reach the coordinator. Check the network connection and try again.');
  }
  const text = await res.text();
  let data = null;
  try {
    data = text === '' ? null : JSON.parse(text);
  } catch {
    // A proxy error page, for example: fall through with data = null.
  }
  if (!res.ok) {
    const err = data && typeof data === 'object' ? data.error : null;
    const error = new ApiError(res.status, err?.code ?? `HTTP_${res.status}`, err?.message ?? `The coordinator answered ${res.status} ${res.statusText}.`);
    if (res.status === 401 && !options.quiet401) onUnauthenticated();
    throw error;
  }
  return data;
}

const enc = encodeURIComponent;

export const api = {
  /** @param {string} token @returns {Promise<{ operator: Operator }>} */
  login: (token) => request('POST', '/api/v1/session', { token }, { quiet401: true }),
  /** @returns {Promise<{ operator: Operator }>} */
  session: () => request('GET', '/api/v1/session', undefined, { quiet401: true }),
  logout: () => request('DELETE', '/api/v1/session', undefined, { quiet401: true }),
  /** @returns {Promise<Status>} */
  status: () => request('GET', '/api/v1/status'),
  /** @param {string} id @returns {Promise<StudyDetail>} */
  study: (id) => request('GET', `/api/v1/studies/${enc(id)}`),
  /** @param {string} manifest JSON or YAML text @returns {Promise<StudySummary>} */
  startStudy: (manifest) => request('POST', '/api/v1/studies', { manifest }),
  /** @param {string} id */
  stopStudy: (id) => request('POST', `/api/v1/studies/${enc(id)}/stop`),
  /** @param {string} site @param {number} ttlSeconds @returns {Promise<{ token: string, site: string, expiresAt: string }>} */
  issueJoinToken: (site, ttlSeconds) => request('POST', '/api/v1/join-tokens', { site, ttlSeconds }),
  /** @param {string} id @returns {Promise<NodeDetail>} */
  node: (id) => request('GET', `/api/v1/nodes/${enc(id)}`),
  /** @param {string} id */
  revokeNode: (id) => request('POST', `/api/v1/nodes/${enc(id)}/revoke`),
  /** @param {string} name @param {'viewer' | 'admin'} role @returns {Promise<{ name: string, role: string, token: string }>} */
  createOperator: (name, role) => request('POST', '/api/v1/operators', { name, role }),
  /** @returns {Promise<{ actions: AuditAction[] }>} */
  audit: () => request('GET', '/api/v1/audit'),
  /** @returns {Promise<{ reports: { name: string, url: string }[] }>} */
  reports: () => request('GET', '/api/v1/reports'),
  /** @returns {Promise<ReleaseList>} */
  releases: () => request('GET', '/api/v1/releases'),
  /** @param {string} name study name @param {number} version @returns {Promise<ReleaseDetail>} */
  release: (name, version) => request('GET', `/api/v1/releases/${enc(name)}/${version}`),
  /** @param {string} name study name @param {string} alias @param {number} version */
  setReleaseAlias: (name, alias, version) => request('PUT', `/api/v1/releases/${enc(name)}/aliases/${enc(alias)}`, { version }),
  /** @param {string} name study name @param {string} alias */
  removeReleaseAlias: (name, alias) => request('DELETE', `/api/v1/releases/${enc(name)}/aliases/${enc(alias)}`),
  /** @returns {Promise<{ series: SeriesSummary[] }>} */
  seriesList: () => request('GET', '/api/v1/series'),
  /** @param {string} name @returns {Promise<SeriesDetail>} */
  series: (name) => request('GET', `/api/v1/series/${enc(name)}`),
  /** @param {string} name @param {number} version @returns {Promise<SeriesPromotion>} */
  promoteSeries: (name, version) => request('POST', `/api/v1/series/${enc(name)}/promote`, { version }),
  /** @param {string} name @returns {Promise<SeriesPromotion>} */
  rollbackSeries: (name) => request('POST', `/api/v1/series/${enc(name)}/rollback`),
  /** @param {string} name */
  runSeriesNow: (name) => request('POST', `/api/v1/series/${enc(name)}/run-now`),
  /** @param {string} name @param {'pause' | 'resume'} verb */
  setSeriesState: (name, verb) => request('POST', `/api/v1/series/${enc(name)}/${verb}`),
};

/**
 * Subscribe to the server's change events. EventSource reconnects by itself after a network
 * error; it gives up only when the server answers with an error status (e.g. 401 once the
 * session is gone), and then we ask onClosed() what to do.
 * @param {{ onChange: (e: ChangeEvent) => void, onState: (s: 'live' | 'reconnecting' | 'closed') => void, onOpen: () => void }} handlers
 * @returns {() => void} unsubscribe
 */
export function subscribe({ onChange, onState, onOpen }) {
  const source = new EventSource('/api/v1/events'); // same-origin: the session cookie goes along
  source.addEventListener('open', () => {
    onState('live');
    onOpen();
  });
  source.addEventListener('error', () => {
    onState(source.readyState === EventSource.CLOSED ? 'closed' : 'reconnecting');
  });
  source.addEventListener('change', (event) => {
    /** @type {ChangeEvent} */
    let change;
    try {
      change = JSON.parse(/** @type {MessageEvent} */ (event).data);
    } catch {
      change = { kind: 'study' };
    }
    onChange(change);
  });
  return () => source.close();
}

/**
 * Collect change events and run `refresh` at most once per `intervalMs`, never two at a time.
 * The refresh receives what changed since the last run: the study ids named by the events, and
 * `all` when an event named no study (a node change, say) and every open view may be stale.
 * @param {(changes: { all: boolean, studyIds: Set<string> }) => Promise<void>} refresh
 * @param {number} intervalMs
 * @returns {(change: ChangeEvent | null) => void} call with null to force a full refresh
 */
export function coalesce(refresh, intervalMs) {
  let all = false;
  let studyIds = new Set();
  /** @type {ReturnType<typeof setTimeout> | null} */
  let timer = null;
  let running = false;
  let lastRun = 0;

  const schedule = () => {
    if (timer !== null || running) return;
    timer = setTimeout(run, Math.max(0, lastRun + intervalMs - Date.now()));
  };
  const run = async () => {
    timer = null;
    running = true;
    lastRun = Date.now();
    const changes = { all, studyIds };
    all = false;
    studyIds = new Set();
    try {
      await refresh(changes);
    } finally {
      running = false;
      if (all || studyIds.size > 0) schedule();
    }
  };
  return (change) => {
    if (change === null || change.studyId === undefined) all = true;
    else studyIds.add(change.studyId);
    schedule();
  };
}
