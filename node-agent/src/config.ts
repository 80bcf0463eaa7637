import convict from 'convict';
import { FedlhsError } from '@fedlhs/core';
import { ConfigError, loadConfig, type ConfigSources } from '@fedlhs/service';

export { ConfigError };

// Epsilon and delta are real numbers: a strict format (convict's Number would take "1.5x" as 1.5).
convict.addFormats({
  'non-negative-real': {
    coerce: (v: unknown) => (typeof v === 'string' && /^(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i.test(v.trim()) ? Number(v) : v),
    validate: (v: unknown) => {
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new Error('must be a number, 0 or more');
    },
  },
});

/**
 * The node agent's configuration schema: JSON file (--config), then environment (FEDLHS_*),
 * then flags, validated strictly at start.
 */
export const agentConfigSchema = {
  site: { doc: 'This clinic\'s site name, as the operator issued the join token for.', format: String, default: '', env: 'FEDLHS_SITE', arg: 'site' },
  stateDir: {
    doc: 'Directory for the node credential (0600), approvals and the audit log of what left the clinic.',
    format: String,
    default: './.fedlhs/agent',
    env: 'FEDLHS_STATE_DIR',
    arg: 'state-dir',
  },
  coordinator: {
    address: { doc: 'Coordinator gRPC address, host:port; or several comma-separated (active/standby coordinators): the agent uses the first whose gRPC health is SERVING and moves on when it stops serving. The agent only dials out.', format: String, default: 'localhost:7443', env: 'FEDLHS_COORDINATOR', arg: 'coordinator' },
  },
  tls: {
    mode: { doc: "'tls' (default) or 'plaintext' (loopback demos and tests only).", format: ['tls', 'plaintext'], default: 'tls', env: 'FEDLHS_TLS_MODE', arg: 'tls-mode' },
    ca: { doc: 'PEM CA bundle that signed the coordinator certificate; empty: system roots.', format: String, default: '', env: 'FEDLHS_TLS_CA', arg: 'tls-ca' },
    cert: { doc: 'PEM client certificate for mutual TLS (optional).', format: String, default: '', env: 'FEDLHS_TLS_CERT', arg: 'tls-cert' },
    key: { doc: 'PEM private key of the client certificate.', format: String, default: '', env: 'FEDLHS_TLS_KEY', arg: 'tls-key', sensitive: true },
    serverName: { doc: 'Expected name in the coordinator certificate, if not the address host.', format: String, default: '', env: 'FEDLHS_TLS_SERVER_NAME', arg: 'tls-server-name' },
  },
  joinToken: { doc: 'One-time join token for `enrol`.', format: String, default: '', env: 'FEDLHS_JOIN_TOKEN', arg: 'join-token', sensitive: true },
  data: {
    format: {
      doc: "Local data format: 'flat-table' (one CSV, one row per record), 'synthea-csv' (a Synthea CSV export directory), 'fhir-ndjson' (a FHIR R4 Bulk Data export directory) or 'omop-csv' (OMOP CDM v5.4 tables as CSV).",
      format: ['flat-table', 'synthea-csv', 'fhir-ndjson', 'omop-csv'],
      default: 'flat-table',
      env: 'FEDLHS_DATA_FORMAT',
      arg: 'data-format',
    },
    path: { doc: 'Local data: the CSV file (flat-table) or export directory (other formats).', format: String, default: '', env: 'FEDLHS_DATA_PATH', arg: 'data-path' },
    keyColumn: { doc: 'Column with a pseudonymous record id that keys the train/hold-out split; empty: row number.', format: String, default: '', env: 'FEDLHS_DATA_KEY_COLUMN', arg: 'data-key-column' },
    encoding: {
      doc: "Text encoding of the local files: 'utf-8' (default) or 'latin1' (ISO-8859-1). In UTF-8, a record with bytes that are not valid UTF-8 in a column that is read is skipped and counted by reason.",
      format: ['utf-8', 'latin1'],
      default: 'utf-8',
      env: 'FEDLHS_DATA_ENCODING',
      arg: 'data-encoding',
    },
  },
  minCohort: { doc: 'Refuse to train with fewer usable records than this.', format: 'whole-number', default: 20, env: 'FEDLHS_MIN_COHORT', arg: 'min-cohort' },
  autoApprove: {
    doc: 'Approve every study manifest without review. Demos and simulations only; logged loudly.',
    format: 'strict-boolean',
    default: false,
    env: 'FEDLHS_AUTO_APPROVE',
    arg: 'auto-approve',
  },
  backend: { doc: 'TensorFlow.js backend: auto (tfjs-node, else wasm, else cpu) or one of them.', format: ['auto', 'tensorflow', 'wasm', 'cpu'], default: 'auto', env: 'FEDLHS_BACKEND', arg: 'backend' },
  reconnect: {
    baseMs: { doc: 'First reconnect delay (ms) before jitter.', format: 'whole-number', default: 500, env: 'FEDLHS_RECONNECT_BASE_MS', arg: 'reconnect-base-ms' },
    capMs: { doc: 'Largest reconnect delay (ms) before jitter.', format: 'whole-number', default: 30000, env: 'FEDLHS_RECONNECT_CAP_MS', arg: 'reconnect-cap-ms' },
  },
  chunkBytes: { doc: 'Upload chunk size in bytes (1 MiB to 4 MiB - 64 KiB, a multiple of 4).', format: 'whole-number', default: 1048576, env: 'FEDLHS_CHUNK_BYTES', arg: 'chunk-bytes' },
  releases: {
    autoDeploy: {
      doc: "Which verified releases the agent deploys by itself: 'off' (default: only `fedlhs-agent release deploy`) or 'champion' (whichever version the coordinator's operators alias 'champion', once verified).",
      format: ['off', 'champion'], default: 'off', env: 'FEDLHS_RELEASES_AUTO_DEPLOY', arg: 'releases-auto-deploy',
    },
    pollSeconds: {
      doc: 'How often a running agent asks the coordinator for new releases and aliases (seconds; also at every connection and when a study completes).',
      format: 'whole-number', default: 300, env: 'FEDLHS_RELEASES_POLL_SECONDS', arg: 'releases-poll-seconds',
    },
    monitorSeconds: {
      doc: "How often a running agent checks whether the export changed, to measure the deployed releases on newly labelled patients and report it (seconds; 0: never).",
      format: 'whole-number', default: 3600, env: 'FEDLHS_RELEASES_MONITOR_SECONDS', arg: 'releases-monitor-seconds',
    },
  },
  series: {
    reportSeconds: {
      doc: 'Data-triggered series: at most one SeriesDataReport per series, and one look at the export for changes, per this many seconds. The protocol asks for 60 (the default); lower only in tests (warned).',
      format: 'whole-number', default: 60, env: 'FEDLHS_SERIES_REPORT_SECONDS', arg: 'series-report-seconds',
    },
  },
  scoring: {
    listen: {
      doc: "The local scoring service (CDS Hooks and JSON), host:port on the clinic's own network; empty (default): off. It serves the deployed releases; nothing it receives leaves the agent.",
      format: String, default: '', env: 'FEDLHS_SCORING_LISTEN', arg: 'scoring-listen',
    },
  },
  privacy: {
    maxEpsilonPerStudy: {
      doc: "This clinic's differential-privacy budget for one study: the largest epsilon (at privacy.delta) it lets a study spend; rounds that would exceed it are declined. 0 (default): no limit. With any limit set, studies without privacy.dp are declined.",
      format: 'non-negative-real', default: 0, env: 'FEDLHS_PRIVACY_MAX_EPSILON_PER_STUDY', arg: 'privacy-max-epsilon-per-study',
    },
    maxEpsilonLifetime: {
      doc: "This clinic's budget over all studies (composed): the largest total epsilon at privacy.delta. 0 (default): none.",
      format: 'non-negative-real', default: 0, env: 'FEDLHS_PRIVACY_MAX_EPSILON_LIFETIME', arg: 'privacy-max-epsilon-lifetime',
    },
    delta: {
      doc: 'The delta at which this clinic accounts its epsilon (greater than 0, less than 1; default 1e-6).',
      format: 'non-negative-real', default: 1e-6, env: 'FEDLHS_PRIVACY_DELTA', arg: 'privacy-delta',
    },
    trustCoordinatorNoise: {
      doc: "Count the coordinator's noise of a study with central DP as protection (default false: central noise protects this clinic only from those who see the coordinator's results, so such rounds count as unprotected).",
      format: 'strict-boolean', default: false, env: 'FEDLHS_PRIVACY_TRUST_COORDINATOR_NOISE', arg: 'privacy-trust-coordinator-noise',
    },
  },
  log: {
    level: { doc: 'Log level.', format: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], default: 'info', env: 'FEDLHS_LOG_LEVEL', arg: 'log-level' },
    pretty: { doc: "'auto' (pretty on a TTY), 'true' or 'false'.", format: ['auto', 'true', 'false'], default: 'auto', env: 'FEDLHS_LOG_PRETTY', arg: 'log-pretty' },
  },
} as const;

export interface AgentConfig {
  site: string;
  stateDir: string;
  coordinator: { address: string };
  tls: { mode: 'tls' | 'plaintext'; ca: string; cert: string; key: string; serverName: string };
  joinToken: string;
  data: { format: 'flat-table' | 'synthea-csv' | 'fhir-ndjson' | 'omop-csv'; path: string; keyColumn: string; encoding: 'utf-8' | 'latin1' };
  minCohort: number;
  autoApprove: boolean;
  backend: 'auto' | 'tensorflow' | 'wasm' | 'cpu';
  reconnect: { baseMs: number; capMs: number };
  chunkBytes: number;
  releases: { autoDeploy: 'off' | 'champion'; pollSeconds: number; monitorSeconds: number };
  series: { reportSeconds: number };
  scoring: { listen: string };
  /** The clinic-held differential-privacy budget (issue 14; privacy-budget.ts). */
  privacy: { maxEpsilonPerStudy: number; maxEpsilonLifetime: number; delta: number; trustCoordinatorNoise: boolean };
  log: { level: string; pretty: 'auto' | 'true' | 'false' };
}

export type LoadAgentConfigOptions = ConfigSources;

const invalid = (key: string, message: string): FedlhsError<'CONFIG_INVALID'> => new FedlhsError('CONFIG_INVALID', message, { details: { key } });

/** Loads and validates the agent configuration; throws CONFIG_INVALID with a one-line message naming the key. */
export function loadAgentConfig(options: LoadAgentConfigOptions = {}): AgentConfig {
  return loadConfig(agentConfigSchema as unknown as convict.Schema<AgentConfig>, options, (c) => {
    checkCoordinatorAddress(c.coordinator.address);
    if ((c.tls.cert === '') !== (c.tls.key === '')) throw invalid('tls.cert', 'tls.cert and tls.key: set both for mutual TLS, or neither');
    if (c.chunkBytes < 1048576 || c.chunkBytes > 4128768 || c.chunkBytes % 4 !== 0) {
      throw invalid('chunkBytes', `chunkBytes: must be a multiple of 4 between 1048576 and 4128768: value was ${c.chunkBytes}`);
    }
    if (c.series.reportSeconds < 1) throw invalid('series.reportSeconds', `series.reportSeconds: must be at least 1: value was ${c.series.reportSeconds}`);
    if (c.releases.pollSeconds < 1) throw invalid('releases.pollSeconds', `releases.pollSeconds: must be at least 1: value was ${c.releases.pollSeconds}`);
    if (c.scoring.listen !== '' && !/^[^\s:]+:\d{1,5}$/.test(c.scoring.listen) && !/^\[[0-9a-fA-F:]+\]:\d{1,5}$/.test(c.scoring.listen)) {
      throw invalid('scoring.listen', `scoring.listen: must be host:port (or empty: off): value was ${JSON.stringify(c.scoring.listen)}`);
    }
    if (!(c.privacy.delta > 0 && c.privacy.delta < 1)) throw invalid('privacy.delta', `privacy.delta: must be greater than 0 and less than 1: value was ${c.privacy.delta}`);
    if (c.reconnect.baseMs < 1 || c.reconnect.capMs < c.reconnect.baseMs) {
      throw invalid('reconnect', `reconnect: baseMs must be >= 1 and capMs >= baseMs: values were ${c.reconnect.baseMs} and ${c.reconnect.capMs}`);
    }
  });
}

/**
 * `coordinator.address`: one host:port, or several comma-separated (active/standby coordinators,
 * tried in order), each host:port with a port from 1 to 65535, none twice.
 */
function checkCoordinatorAddress(value: string): void {
  const addresses = value.split(',').map((a) => a.trim());
  for (const a of addresses) {
    if (!/^[^\s:,]+:\d{1,5}$/.test(a) && !/^\[[0-9a-fA-F:]+\]:\d{1,5}$/.test(a)) {
      throw invalid('coordinator.address', addresses.length === 1
        ? `coordinator.address: must be host:port: value was ${JSON.stringify(value)}`
        : `coordinator.address: each comma-separated address must be host:port: ${JSON.stringify(a)} in value ${JSON.stringify(value)}`);
    }
    const port = Number(a.slice(a.lastIndexOf(':') + 1));
    if (port < 1 || port > 65535) throw invalid('coordinator.address', `coordinator.address: the port must be from 1 to 65535: value was ${JSON.stringify(value)}`);
  }
  const dup = addresses.find((a, i) => addresses.indexOf(a) !== i);
  if (dup !== undefined) throw invalid('coordinator.address', `coordinator.address: ${dup} is named twice: value was ${JSON.stringify(value)}`);
}

/** What enrolment remembered about the coordinator (see NodeCredential). */
export interface RememberedCoordinator {
  address: string;
  tls?: { mode: 'tls' | 'plaintext'; caFile: string; serverName: string } | undefined;
}

/**
 * Settings the operator left at their defaults take what enrolment recorded: the coordinator's
 * address, TLS mode, CA (its copy in the state directory) and server name. Anything given in a
 * file, the environment or a flag wins.
 */
export function withEnrolment(c: AgentConfig, remembered: RememberedCoordinator | undefined, caPath: string): AgentConfig {
  if (remembered === undefined) return c;
  const defaults = agentConfigSchema;
  const isDefault = <T>(value: T, d: T): boolean => value === d;
  const out: AgentConfig = { ...c, coordinator: { ...c.coordinator }, tls: { ...c.tls } };
  if (isDefault(c.coordinator.address, defaults.coordinator.address.default)) out.coordinator.address = remembered.address;
  const tls = remembered.tls;
  if (tls !== undefined) {
    const untouched = isDefault(c.tls.mode, defaults.tls.mode.default) && c.tls.ca === '' && c.tls.serverName === '';
    if (untouched) {
      out.tls.mode = tls.mode;
      out.tls.ca = tls.caFile === '' ? '' : caPath;
      out.tls.serverName = tls.serverName;
    }
  }
  return out;
}
