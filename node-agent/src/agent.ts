import { arch, platform } from 'node:os';
import { FedlhsError, backoffDelay } from '@fedlhs/core';
import type { AgentMessage } from '@fedlhs/proto';
import type { Logger } from '@fedlhs/service';
import { trustedReleasePem } from './release-pin.js';
import type { AgentState, NodeCredential } from './agent-state.js';
import type { AgentConfig } from './config.js';
import type { Clients } from './connection.js';
import { ControlSession } from './control-session.js';
import { LocalData } from './local-data.js';
import { SeriesDataReporter } from './series-data.js';
import { StudyTracker } from './studies.js';
import { TaskRunner, type TaskHandler } from './task-runner.js';
import { evaluateTask } from './tasks/evaluate.js';
import { statisticsTask } from './tasks/statistics.js';
import { trainTask } from './tasks/train.js';
import { secaggTaskHandlers } from './tasks/secagg.js';
import { SecAggSessions } from './tasks/secagg-sessions.js';
import { autoDeployChampions } from './releases/deploy.js';
import { ReleaseFetcher } from './releases/fetch.js';
import { ReleaseMonitor } from './releases/monitor.js';
import { startScoringService, type ScoringService } from './scoring/cds-hooks.js';


/** The agent's name and version, sent in Hello and at enrolment. */
export const AGENT_VERSION = 'fedlhs-agent/0.1.0';

/** Lifecycle of the agent process. */
export type AgentLifecycle = 'INITIALIZED' | 'RUNNING' | 'STOPPING' | 'STOPPED' | 'FAILED';

/** The task kinds this agent runs: one handler each. */
const TASK_HANDLERS: readonly TaskHandler[] = [trainTask, evaluateTask, statisticsTask];

/**
 * A kind no handler claims (TASK_KIND_UNSPECIFIED, or one from a newer coordinator) runs as an
 * evaluation logged with kind 'statistics', which is what the agent did before the handler
 * registry; kept so that moving to the registry changed no behaviour.
 */
const UNKNOWN_KIND_HANDLER: TaskHandler = { ...evaluateTask, name: 'statistics' };

const abortable = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    }, { once: true });
  });

/**
 * The clinic's node agent: keeps one control session to the coordinator (dialling out,
 * reconnecting with jittered backoff), reports readiness per study, and runs the tasks it is
 * given one at a time — only for manifests its own operator approved. What it sends is
 * weights, example counts and aggregate metrics; each is written to the audit log first.
 */
export class Agent {
  lifecycle: AgentLifecycle = 'INITIALIZED';
  private readonly log: Logger;
  private readonly session: ControlSession;
  private readonly fetcher: ReleaseFetcher;
  private readonly monitor: ReleaseMonitor;
  private monitorStarted = false;
  /** The release key pinned at enrolment (the scoring service re-verifies releases with it). */
  private readonly pinnedPem: string | undefined;
  /** Looks for new releases (and applies the auto-deploy policy); never rejects. */
  private readonly checkReleases: () => void;
  /** The secure-aggregation rounds this clinic takes part in now (keys in memory only). */
  private readonly secagg: SecAggSessions;

  constructor(
    private readonly config: AgentConfig,
    state: AgentState,
    credential: NodeCredential,
    private readonly clients: Clients,
    logger: Logger,
    backend: string,
  ) {
    this.log = logger.child({ component: 'agent', nodeId: credential.nodeId, site: credential.siteName });
    const dataOptions = { format: config.data.format, path: config.data.path, keyColumn: config.data.keyColumn, minCohort: config.minCohort, encoding: config.data.encoding };
    const data = new LocalData(dataOptions);
    const info = { agentVersion: AGENT_VERSION, trainingBackend: backend, platform: `${platform()}-${arch()} node-${process.versions.node}` };
    // Studies and tasks report through whichever session is open; the parts share one logger so log lines keep the agent's fields.
    const parts = { config, state, credential, clients, data, log: this.log, send: (message: AgentMessage) => this.session.send(message) };
    const releaseParts = { stateDir: config.stateDir, state, credential: credential.credential, coordinator: config.coordinator.address, log: this.log };
    this.fetcher = new ReleaseFetcher({ ...releaseParts, client: clients.federation, releaseKey: credential.releaseKey });
    // New releases are kept only when signed by the current key; kept ones verify with it or a key it replaced.
    const pinnedPem = credential.releaseKey === undefined ? undefined : trustedReleasePem(credential.releaseKey);
    this.monitor = new ReleaseMonitor({ ...releaseParts, client: clients.federation, pinnedPem, data: dataOptions });
    this.pinnedPem = pinnedPem;
    // Auto-deploys run one after another: two checks finishing together must not both deploy.
    let deploying: Promise<unknown> = Promise.resolve();
    this.checkReleases = (): void => {
      void this.fetcher.check().then((summary) => {
        if (config.releases.autoDeploy !== 'champion' || pinnedPem === undefined) return;
        // A fresh reader: local normalisation comes from the export as it is now.
        const ctx = { stateDir: config.stateDir, state, pinnedPem, data: new LocalData(dataOptions), by: 'auto-policy', coordinator: config.coordinator.address, log: this.log };
        deploying = deploying.then(() => autoDeployChampions(ctx, summary.releases));
        return deploying;
      }).catch((err: unknown) => this.log.error({ event: 'release.check_failed', err: (err as Error).message }, `release check failed: ${(err as Error).message}`));
    };
    // Data-triggered series: counts of newly labelled patients, on the session's own rhythm (series-data.ts).
    const seriesData = new SeriesDataReporter({
      state, data, log: this.log, send: parts.send, coordinator: config.coordinator.address, dataPath: config.data.path, intervalMs: config.series.reportSeconds * 1000,
    });
    if (config.series.reportSeconds < 60) {
      this.log.warn({ event: 'series.report_interval_short', reportSeconds: config.series.reportSeconds }, `series.reportSeconds is ${config.series.reportSeconds}: data reports may go out more often than the protocol's once a minute (tests only)`);
    }
    const studies = new StudyTracker({ ...parts, onStudyCompleted: () => this.checkReleases(), onStudyEnded: (study) => seriesData.studyEnded(study.manifestSha256) });
    const releases = { pinnedPem, fetchRelease: (studyName: string, version: number) => this.fetcher.fetchRelease(studyName, version) };
    // Secure-aggregation rounds live in this process only (tasks/secagg-sessions.ts): a lost session drops them.
    this.secagg = new SecAggSessions();
    const tasks = new TaskRunner({ ...parts, studies, handlers: [...TASK_HANDLERS, ...secaggTaskHandlers(this.secagg)], fallback: UNKNOWN_KIND_HANDLER, releases });
    this.session = new ControlSession({
      clients, credential, coordinatorAddress: config.coordinator.address, info, log: this.log,
      handlers: {
        welcomed: () => {
          studies.welcomed();
          seriesData.welcomed();
          this.checkReleases();
          if (!this.monitorStarted) {
            this.monitorStarted = true;
            this.tickMonitor();
          }
        },
        heartbeat: () => {
          studies.recheckApprovals();
          seriesData.heartbeat();
        },
        study: (study) => void studies.onStudy(study),
        task: (task) => tasks.onTask(task),
        cancel: (cancel) => tasks.onCancel(cancel),
        activeTaskIds: () => tasks.activeTaskIds(),
      },
    });
  }

  /** Measures the deployed releases if the export changed (releases.monitorSeconds > 0). */
  private tickMonitor(): void {
    if (this.config.releases.monitorSeconds === 0) return;
    this.monitor.tick().catch((err: unknown) => this.log.error({ event: 'release.monitor_failed', err: (err as Error).message }, `live performance check failed: ${(err as Error).message}`));
  }

  /** Runs sessions until `signal` aborts. Rejects only with FedlhsError CREDENTIAL_REJECTED. */
  async run(signal: AbortSignal): Promise<void> {
    this.lifecycle = 'RUNNING';
    let attempt = 0;
    signal.addEventListener('abort', () => this.session.cancel(), { once: true });
    // Releases are polled for (new versions, moved aliases) and the deployed ones measured while running.
    const timers = [setInterval(() => this.checkReleases(), this.config.releases.pollSeconds * 1000)];
    if (this.config.releases.monitorSeconds > 0) timers.push(setInterval(() => this.tickMonitor(), this.config.releases.monitorSeconds * 1000));
    for (const t of timers) t.unref();
    // The clinic's own scoring service (CDS Hooks, JSON), when configured: started before the
    // session so a coordinator that cannot be reached does not keep scores from the clinic.
    let scoring: ScoringService | undefined;
    if (this.config.scoring.listen !== '') {
      if (this.pinnedPem === undefined) {
        for (const t of timers) clearInterval(t);
        throw new FedlhsError('CONFIG_INVALID', 'scoring.listen is set, but no release key was pinned at enrolment: releases cannot be verified, so nothing can be scored (enrol again with a coordinator that sends its release key, or leave scoring.listen empty)', { details: { key: 'scoring.listen' } });
      }
      scoring = await startScoringService({ listen: this.config.scoring.listen, stateDir: this.config.stateDir, pinnedPem: this.pinnedPem, log: this.log.child({ component: 'scoring' }) });
    }
    try {
      while (!signal.aborted) {
        // Several coordinators (active/standby): connect to the first that reports SERVING; if
        // none does (a takeover in progress), back off and look again.
        const serving = await this.clients.select(this.log);
        const welcomed = serving === undefined ? false : await this.session.open(signal);
        // Stage tasks are not re-sent on a new session: the rounds in progress are lost (proto "Secure aggregation").
        this.secagg.dropAll(this.log);
        if (signal.aborted) break;
        attempt = welcomed ? 0 : attempt + 1;
        const delay = backoffDelay(attempt, this.config.reconnect);
        this.log.info({ event: 'agent.reconnecting', retryInMs: Math.round(delay) }, `reconnecting to ${this.clients.address} in ${(delay / 1000).toFixed(1)}s`);
        await abortable(delay, signal);
      }
      // A task still running is abandoned, not awaited: the coordinator re-sends open tasks
      // on the next session and uploads are idempotent, so stopping never loses work.
      this.lifecycle = 'STOPPED';
    } catch (err) {
      this.lifecycle = 'FAILED';
      throw err;
    } finally {
      for (const t of timers) clearInterval(t);
      await scoring?.close();
    }
  }
}
