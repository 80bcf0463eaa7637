/**
 * The stable `event` keys of fedlhs log lines (design core-redesign §4.4). Every log line at warn
 * or above, and every line a test or the simulator waits on, carries one of these as `event`;
 * message text is for people and may change. `events.test.ts` scans the sources for `event:`
 * literals and fails on a key missing here.
 *
 * The agent's audit-record types (`update_sent`, `task_declined`, …, node-agent/src/agent-state.ts)
 * are a separate vocabulary: snake_case, no dot.
 */
export const EVENTS = {
  // ---- coordinator process -------------------------------------------------------------
  'coordinator.ready': 'the coordinator listens; fields grpcPort, adminPort, store, blobStore (files | postgres)',
  'coordinator.stopping': 'the coordinator began a graceful shutdown',
  'coordinator.start_failed': 'the coordinator could not start (fatal)',
  'coordinator.shutdown_failed': 'a graceful shutdown threw; the process exits 1',
  'tls.disabled': 'a process runs with tls.mode=plaintext (loopback demos and tests only)',
  'data-dir.lock-taken-over': 'the data directory lock of a coordinator that died was taken over',
  'grpc.internal': 'a gRPC handler failed with an internal error (details stay in the log)',
  'admin.action': 'an operator changed something through the admin API (audit)',
  'admin.internal': 'an admin API request failed with an internal error',
  'auth.throttled': 'a source address made limits.authFailuresPerMinute failed credential checks; its attempts are refused (RATE_LIMITED / HTTP 429) until its budget refills (warn, once per source per episode); fields surface (grpc | admin), source, retryAfterMs',
  'admin.bad_request': 'the admin HTTP parser refused a malformed request (400/408/413/431 with a JSON error); fields code, reason',
  // ---- studies ---------------------------------------------------------------------------
  'study.started': 'a study was created and its round 0 checkpointed',
  'study.resumed': 'a RUNNING study resumed from its last committed round after a restart',
  'study.resume_failed': 'a RUNNING study could not be resumed and was marked FAILED',
  'study.completed': 'a study ran all its rounds',
  'study.failed': 'a study ended FAILED; field reason',
  'study.stopped': 'an operator stopped a study',
  'study.internal_error': 'a study runner threw an unexpected error (the study then fails)',
  'checkpoint.orphans_removed': 'checkpoint files of rounds that never committed were removed at start',
  'storage.fault': 'the data directory or store could not be written (error; once per episode): coordinator health is degraded, fedlhs_storage_healthy 0; fields kind (disk_full | read_only | io_error | unavailable), op, detail',
  'storage.recovered': 'every storage probe passed again after a storage fault; waiting study runners go on; fields kind, faultMs',
  'storage.probe_failed': 'a storage probe failed for a reason that is not a storage fault (warn; it counts as passed); fields probe, err',
  'storage.work_files_removed': 'held updates and spooled uploads a crash left behind were removed at start; fields held, spooled',
  'study.waiting_for_storage': 'a study runner waits for storage to recover before retrying its round or recording its end (warn); fields why, kind, since',
  'study.cleanup_failed': 'held updates or uncommitted checkpoint names could not be removed (warn; retried after recovery and at start); fields when, err',
  'blob.collected': 'a blob garbage collection ran; fields reason (start | study-ended | periodic), removed, bytes, referenced',
  'blob.collect_failed': 'a blob garbage collection failed and removed nothing further (warn); fields reason, err',
  // ---- rounds ----------------------------------------------------------------------------
  'round.started': 'a round attempt began and waits for READY clinics; fields round, attempt',
  'round.phase': 'a round attempt changed state; fields round, attempt, state (reason)',
  'round.awaiting-alike': 'clinics failed alike and quorum is out of reach; waiting for the rest before deciding',
  'round.aggregated': 'the accepted updates were aggregated into a candidate model',
  'round.committed': 'a round committed its model; fields round, attempt, sha256, metrics',
  'round.failed': 'a round attempt failed; fields reason, failures',
  'round.unevaluated': 'a round committed although no clinic evaluated its model (warn; the round reason says "0 of N"); fields evaluatedSites, askedSites',
  'readiness.deadline': 'deadlines.readinessSeconds passed before a round could start (the study fails)',
  'statistics.derived': 'federated statistics fixed the study normalisation',
  'statistics.withheld': 'federated statistics withheld (fewer clinics than minCellCount)',
  'statistics.fallback': 'some features were not scaled by federated statistics; their fallback',
  'metrics.withheld': "sites' small-cell metrics kept only in the global value",
  'figures.withheld': "sites' validation or test figures kept only in the pooled value (fewer than minCellCount patients, cases or non-cases, or withheld to protect such a site); fields round, phase, sites, minCellCount",
  'evaluation.missing': 'a committed round has no global evaluation metric',
  'comparison.missing': 'a series run round with a champion got no clinic comparison with it (warn); fields round, champion',
  // ---- tasks and contributions (coordinator) -----------------------------------------------
  'task.declined': 'a task ended DECLINED (coordinator) / the agent declined a task (agent)',
  'task.failed': 'a task ended FAILED (coordinator) / a task failed at the agent (agent)',
  'task.rejected': 'a task ended REJECTED (coordinator) / the coordinator rejected a result (agent)',
  'task.cancelled': 'a task was cancelled (coordinator: by the round; agent: the coordinator told it)',
  'update.accepted': 'an update was accepted (coordinator: per clinic; agent: the coordinator confirmed it)',
  'update.rejected': 'a model update was rejected; fields reason, detail',
  'statistics.rejected': 'a statistics report was rejected; fields reason, detail',
  'evaluation.rejected': 'an evaluation report was rejected; fields reason, detail',
  'study.refused': "'study start' refused a study whose model would not fit limits.modelMemoryBytes (warn); fields parameters, factor, estimateBytes, budgetBytes",
  'update.receiving': 'an upload stream sent its header and is being received (debug); fields nodeId, taskId, bytes',
  'contribution.revoked': 'a contribution was refused because its node was revoked during the call (warn); field nodeId',
  'rejection.unrecorded': 'a node sent more than 60 rejected calls a minute; further rejections are answered but not recorded or logged for now (warn, once per node per minute); fields nodeId, reason, perMinute',
  'release.key_created': 'the coordinator created its Ed25519 release signing key in <dataDir>/release-key.pem (mode 0600) at first start; field releaseKeyFingerprint (what clinics compare out of band)',
  'approval.record_failed': 'the coordinator could not record that a node approved a study (declared a readiness other than NOT_APPROVED or WITHDRAWN for its manifest) (warn); retried at its next readiness; fields nodeId, studyId, err',
  'download.refused': 'a model download was refused (warn); fields nodeId, reason (per_node | total | not_participant), limit (the config key), value, max',
  'download.stalled': 'a model download whose client took no data for the idle bound was ended and its memory given back (warn); fields nodeId, idleMs, limit',
  // ---- nodes and sessions (coordinator) ----------------------------------------------------
  'join_token.issued': 'a one-time join token was issued for a site',
  'node.enrolled': 'a node traded a join token for a credential',
  'node.revoked': "a node's credential was revoked",
  'node.online': 'a node opened a control session',
  'node.offline': "a node's control session ended; field why",
  'node.readiness': "a node's readiness for a study changed; fields studyId, readiness, detail",
  'session.dropped': 'a control session was dropped (warn); field reason: heartbeat_timeout | stream_error | superseded | slow_consumer',
  'node.seen_flush_failed': 'last-seen times could not be written; kept in memory and retried (warn); field nodes',
  'store.connection_lost': 'a PostgreSQL connection of the store failed; the store reconnects on next use (warn)',
  'session.message_failed': 'handling a message of a control session threw',
  'session.message_invalid': 'a control-session message broke the wire limits (wire-limits.ts); the session ended INVALID_ARGUMENT (warn); fields field, detail',
  'session.rate_limited': 'a control session sent faster than limits.sessionMessagesPerSecond / limits.sessionMessageBurst; the session ended RESOURCE_EXHAUSTED (warn)',
  'session.readiness_refused': 'readiness for a study not running on this coordinator was not stored (warn; once per node and study in 10 minutes, at most 17 per node); field studyId',
  // ---- logging -----------------------------------------------------------------------------
  'log.dropped': 'log lines were dropped because the log destination was too slow; at most one summary per 10 s',
  // ---- node agent --------------------------------------------------------------------------
  'agent.connected': 'the agent opened a session and was welcomed',
  'agent.reconnecting': 'the agent will reconnect after a delay; field retryInMs',
  'agent.session_dropped': 'the agent dropped a silent session (no welcome or no heartbeat)',
  'agent.session_ended': 'the control session ended with an error',
  'agent.progress_unknown_study': 'a StudyProgress named a study the agent was never announced (ignored; warn)',
  'agent.wrong_node': 'the coordinator welcomed a different node id',
  'agent.credential_rejected': "the coordinator refused the node's credential (fatal; re-enrol)",
  'agent.auto_approve': 'the agent runs with --auto-approve (demos and simulations only)',
  'study.awaiting_approval': "a study's manifest waits for the clinic operator's approval",
  'study.auto_approved': 'a manifest was approved without review (--auto-approve)',
  'study.manifest_invalid': 'an announced manifest failed verification; the agent does not take part',
  'data.warning': "the clinic's data passed the checks with warnings",
  'readiness.sent': 'the agent reported its readiness for a study; fields readiness, detail',
  'task.received': 'the agent started a task (data prepared, model about to download)',
  'task.progress': 'a transfer reached a progress step; fields phase (download | upload), percent',
  'task.retrying': 'a transient transfer failure; the agent retries',
  'task.abandoned': 'the coordinator no longer needs a task',
  'task.interrupted': 'a task was interrupted by a transient error; it runs again if re-sent',
  'model.downloaded': 'a task model was downloaded and its digest verified',
  'update.sent': 'an update was uploaded (and accepted); fields bytes, ms, mbPerS',
  'statistics.sent': 'the agent sent its feature statistics',
  'evaluation.sent': 'the agent sent its hold-out evaluation',
  'final_model.saved': "a completed study's final model was saved locally",
  'final_model.failed': "a completed study's final model could not be fetched",
  'evaluation.part_without_figures': 'an evaluation part (validation or test) of this clinic is empty: no figures sent for it (warn, once per study); fields studyId, part',
  // ---- releases (issue 12), coordinator ------------------------------------------------------
  'release.created': 'a completed study was released, signed; fields studyId, studyName, version, round, rule, fingerprint, parentVersion',
  'release.failed': 'a completed study could not be released (error; tried again when storage recovers, every 5 minutes and at start); fields studyId, err',
  'release.selection_fallback': 'no committed round has the figure the selection rule needs: the last round is released, with a warning in the release (warn); fields studyId, round, rule',
  'release.alias_set': 'an operator pointed a release alias at a version (audited); fields studyName, alias, version, operator',
  'release.alias_removed': 'an operator removed a release alias (audited); fields studyName, alias, operator',
  'release.performance_received': 'a site reported live performance of a release; fields studyName, version, nodeId',
  // ---- releases, agent ---------------------------------------------------------------------
  'release.kept': 'a release verified (signature, predicate, every file digest, manifest) and kept locally; fields studyName, version, round, aliases',
  'release.refused': 'a release did not verify and was not kept (warn; audited); fields studyName, version, why (signature | predicate | subjects | digest | manifest | descriptor | malformed | key), file, reason',
  'release.deployed': 'an operator deployed a kept release (audited); fields studyName, version, previousVersion, by',
  'release.auto_deployed': 'the champion auto-deploy policy deployed a kept release (audited); fields studyName, version',
  'release.auto_deploy_skipped': 'the champion auto-deploy policy left a study alone (the operator rolled back or deployed another version by hand); fields studyName, version, reason',
  'release.auto_deploy_failed': 'the champion could not be deployed by the policy (error); fields studyName, version, err',
  'release.rolled_back': 'an operator rolled a deployment back (audited); fields studyName, from, to',
  'release.check_failed': 'looking for new releases failed unexpectedly (error; tried again at the next poll)',
  'release.unsupported': 'the coordinator does not serve releases (an older coordinator; warn once)',
  'release.list_failed': 'ListReleases failed (warn; tried again later)',
  'release.invalid_listing': 'the coordinator listed a release with an invalid name or version (warn; ignored)',
  'release.fetch_failed': 'a release could not be downloaded (warn; not a refusal; tried again later)',
  'release.aliases_failed': 'the aliases of a kept release could not be recorded (warn)',
  'release.monitor_failed': 'a live performance check failed unexpectedly (error)',
  'release.monitor_no_key': 'no release key is pinned: deployed releases are not measured (warn)',
  'release.monitor_state_unreadable': 'the record of reported measurements is unreadable: every deployed release is measured again (warn)',
  'release.performance_sent': 'live performance of a deployed release on the refreshed export was reported; fields studyName, version, numExamples, auc, brier, duplicate',
  'release.performance_failed': 'live performance of a deployed release could not be measured or sent (warn); fields studyName, version, err',
  'release.performance_small_cells': 'the measured test patients are fewer than minCellCount patients, cases or non-cases: nothing is sent (warn; audited as not sent)',
  'release.monitor_baseline': 'the first look at a deployed release records the export as its baseline; nothing is sent until the export changes',
  'release.monitor_unkeyed': 'a flat table without data.keyColumn is not monitored (row numbers move when rows are inserted, so trained rows could be measured) (warn, once)',
  // ---- scoring service (agent) ---------------------------------------------------------------
  'scoring.listening': 'the local scoring service (CDS Hooks, JSON) listens; field url',
  'scoring.exposed': 'the scoring service listens on an address that is not loopback (warn); field url',
  'scoring.request': 'a scoring request was answered; fields method, endpoint, status, ms (never a patient id)',
  'scoring.failed': 'a scoring request failed with an internal error (error; answered 500)',
  'scoring.release_refused': 'a deployed release no longer verifies and is not served (error); fields study, err',
} as const satisfies Record<string, string>;

/** A stable log event key. */
export type EventKey = keyof typeof EVENTS;

/** Every event key, in the order of the list above. */
export const EVENT_KEYS = Object.keys(EVENTS) as EventKey[];

/** Whether `key` is a known event key. */
export function isEventKey(key: string): key is EventKey {
  return Object.hasOwn(EVENTS, key);
}
