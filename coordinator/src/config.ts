import type convict from 'convict';
import { ConfigError, loadConfig, type ConfigSources } from '@fedlhs/service';
import { automaticModelMemoryBytes, type CoordinatorLimits } from './limits.js';

export { ConfigError };

/**
 * The coordinator's configuration schema. Every key can come from a JSON config file
 * (--config), an environment variable (FEDLHS_*) or a command-line flag, in increasing order
 * of precedence, and is validated strictly at start.
 */
export const coordinatorConfigSchema = {
  dataDir: {
    doc: "Directory for the SQLite database (store.kind 'sqlite'), checkpoints, spooled uploads and the lock that keeps a second coordinator out.",
    format: String,
    default: './.fedlhs/coordinator',
    env: 'FEDLHS_DATA_DIR',
    arg: 'data-dir',
  },
  store: {
    kind: {
      doc: "Where the coordinator keeps its state: 'sqlite' (embedded, in dataDir; the default) or 'postgres' (scale-out; needs store.url).",
      format: ['sqlite', 'postgres'],
      default: 'sqlite',
      env: 'FEDLHS_STORE',
      arg: 'store',
    },
    url: {
      doc: "PostgreSQL connection URL for store.kind 'postgres', e.g. postgres://fedlhs:PASSWORD@db:5432/fedlhs or postgres:///fedlhs?host=/var/run/postgresql. Secret: never logged.",
      format: String,
      default: '',
      env: 'FEDLHS_STORE_URL',
      arg: 'store-url',
      sensitive: true,
    },
    poolSize: {
      doc: "Connections of the PostgreSQL read pool (the group committer has one more of its own).",
      format: 'whole-number',
      default: 8,
      env: 'FEDLHS_STORE_POOL_SIZE',
      arg: 'store-pool-size',
    },
  },
  ha: {
    enabled: {
      doc: "Active/standby (needs store.kind 'postgres' and PostgreSQL blobs): coordinators on one database share a leadership lease; one serves, the others report NOT_SERVING and refuse work with NOT_LEADER until the lease is free. Default false: a single coordinator, as before.",
      format: Boolean,
      default: false,
      env: 'FEDLHS_HA_ENABLED',
      arg: 'ha-enabled',
    },
    leaseSeconds: {
      doc: 'Length of the leadership lease, by the database clock (renewed every third of it). A standby takes over at most about leaseSeconds x 4/3 after the active stops renewing.',
      format: 'whole-number',
      default: 10,
      env: 'FEDLHS_HA_LEASE_SECONDS',
      arg: 'ha-lease-seconds',
    },
    advertiseAddress: {
      doc: "host:port agents reach this coordinator's gRPC at; standbys name it in their NOT_LEADER answers (trailer fedlhs-leader). Empty: not named.",
      format: String,
      default: '',
      env: 'FEDLHS_HA_ADVERTISE_ADDRESS',
      arg: 'ha-advertise-address',
    },
  },
  series: {
    simulatedClock: {
      doc: "Simulations only: study series are scheduled on a clock operators move (POST /api/v1/series-clock), not on real time, so a simulation can run a yearly series through years in minutes. Logged loudly at start. Never for a real network.",
      format: Boolean,
      default: false,
      env: 'FEDLHS_SERIES_SIMULATED_CLOCK',
      arg: 'series-simulated-clock',
    },
  },
  blobs: {
    store: {
      doc: "Where model checkpoints and other blobs live: 'files' (<dataDir>/blobs), 'postgres' (tables blobs/blob_chunks in store.url, so a standby sees them), or 'auto' (postgres when store.kind is 'postgres', else files).",
      format: ['auto', 'files', 'postgres'],
      default: 'auto',
      env: 'FEDLHS_BLOB_STORE',
      arg: 'blob-store',
    },
    cacheBytes: {
      doc: "Local read-through cache of PostgreSQL blobs in <dataDir>/blob-cache, in bytes (0: no cache). Content-addressed, so a cached blob is never stale.",
      format: 'whole-number',
      default: 1024 * 1024 * 1024,
      env: 'FEDLHS_BLOB_CACHE_BYTES',
      arg: 'blob-cache-bytes',
    },
    gcGraceSeconds: {
      doc: 'Blob garbage collection keeps a blob no row references for this long after it was written (a checkpoint between its write and its commit), in seconds.',
      format: 'whole-number',
      default: 3600,
      env: 'FEDLHS_BLOB_GC_GRACE_SECONDS',
      arg: 'blob-gc-grace-seconds',
    },
    gcIntervalSeconds: {
      doc: 'Blob garbage collection runs at start, after each study ends and every this many seconds (0: not periodically).',
      format: 'whole-number',
      default: 3600,
      env: 'FEDLHS_BLOB_GC_INTERVAL_SECONDS',
      arg: 'blob-gc-interval-seconds',
    },
  },
  transfer: {
    inFlightBytes: {
      doc: 'Bytes all model downloads together hold in the coordinator at once (0: the larger of 4 MiB and the largest model). Downloads beyond it wait their turn, never fail.',
      format: 'whole-number',
      default: 0,
      env: 'FEDLHS_TRANSFER_INFLIGHT_BYTES',
      arg: 'transfer-inflight-bytes',
    },
    uploadStreamsPerNode: {
      doc: 'Upload streams one node may have open at once; another is refused with RESOURCE_EXHAUSTED (agents retry).',
      format: 'whole-number',
      default: 1,
      env: 'FEDLHS_TRANSFER_UPLOAD_STREAMS_PER_NODE',
      arg: 'transfer-upload-streams-per-node',
    },
    sessionQueueMessages: {
      doc: 'Messages a control session may have queued towards its agent; above it the session is dropped (session.dropped, reason slow_consumer).',
      format: 'whole-number',
      default: 64,
      env: 'FEDLHS_TRANSFER_SESSION_QUEUE_MESSAGES',
      arg: 'transfer-session-queue-messages',
    },
    uploadIdleSeconds: {
      doc: 'An upload stream that sends nothing for this many seconds is ended with DEADLINE_EXCEEDED and recorded as UPLOAD_STALLED (its task stays open).',
      format: 'whole-number',
      default: 120,
      env: 'FEDLHS_TRANSFER_UPLOAD_IDLE_SECONDS',
      arg: 'transfer-upload-idle-seconds',
    },
    downloadIdleSeconds: {
      doc: 'A model download whose client takes no data for this many seconds is ended (DEADLINE_EXCEEDED, code DOWNLOAD_STALLED) and the memory it held is given back.',
      format: 'whole-number',
      default: 120,
      env: 'FEDLHS_TRANSFER_DOWNLOAD_IDLE_SECONDS',
      arg: 'transfer-download-idle-seconds',
    },
  },
  storage: {
    probeIntervalSeconds: {
      doc: 'How often the coordinator checks that its data directory (and SQLite store) accept writes, in seconds; a failed check turns it degraded (/healthz 503, fedlhs_storage_healthy 0).',
      format: 'whole-number', default: 10, env: 'FEDLHS_STORAGE_PROBE_INTERVAL_SECONDS', arg: 'storage-probe-interval-seconds',
    },
    faultProbeIntervalSeconds: {
      doc: 'During a storage fault, how often it checks whether storage has recovered, in seconds (waiting studies resume at the first check that passes).',
      format: 'whole-number', default: 1, env: 'FEDLHS_STORAGE_FAULT_PROBE_INTERVAL_SECONDS', arg: 'storage-fault-probe-interval-seconds',
    },
  },
  limits: {
    downloadStreamsPerNode: {
      doc: 'Model downloads one node may have open at once; another is refused with RESOURCE_EXHAUSTED (code RESOURCE_LIMIT).',
      format: 'whole-number', default: 2, env: 'FEDLHS_LIMITS_DOWNLOAD_STREAMS_PER_NODE', arg: 'limits-download-streams-per-node',
    },
    downloadStreamsTotal: {
      doc: 'Model downloads all nodes together may have open at once; another is refused with RESOURCE_EXHAUSTED (code RESOURCE_LIMIT).',
      format: 'whole-number', default: 256, env: 'FEDLHS_LIMITS_DOWNLOAD_STREAMS_TOTAL', arg: 'limits-download-streams-total',
    },
    sessionMessagesPerSecond: {
      doc: 'Sustained messages per second one control session may send; beyond its burst the session is ended with RESOURCE_EXHAUSTED (code RATE_LIMITED).',
      format: 'whole-number', default: 20, env: 'FEDLHS_LIMITS_SESSION_MESSAGES_PER_SECOND', arg: 'limits-session-messages-per-second',
    },
    sessionMessageBurst: {
      doc: 'Messages one control session may send in a burst above its sustained rate.',
      format: 'whole-number', default: 200, env: 'FEDLHS_LIMITS_SESSION_MESSAGE_BURST', arg: 'limits-session-message-burst',
    },
    maxExamplesPerUpdate: {
      doc: 'The most examples (num_examples) one update may claim, whatever its clinic reported; beyond it the update is rejected (BAD_EXAMPLE_COUNT).',
      format: 'whole-number', default: 10_000_000, env: 'FEDLHS_LIMITS_MAX_EXAMPLES_PER_UPDATE', arg: 'limits-max-examples-per-update',
    },
    modelMemoryBytes: {
      doc: "Memory a study's model may need in the coordinator (model bytes times its strategy's factor); a larger study is refused at 'study start'. 0: a quarter of the machine's memory.",
      format: 'whole-number', default: 0, env: 'FEDLHS_LIMITS_MODEL_MEMORY_BYTES', arg: 'limits-model-memory-bytes',
    },
    authFailuresPerMinute: {
      doc: 'Failed credential checks (node credentials, operator logins) one source address may make per minute; beyond it the source is refused with RESOURCE_EXHAUSTED (code RATE_LIMITED) until its budget refills.',
      format: 'whole-number', default: 30, env: 'FEDLHS_LIMITS_AUTH_FAILURES_PER_MINUTE', arg: 'limits-auth-failures-per-minute',
    },
  },
  grpc: {
    host: { doc: 'Address the gRPC server binds.', format: String, default: '0.0.0.0', env: 'FEDLHS_GRPC_HOST', arg: 'grpc-host' },
    port: { doc: 'gRPC port; 0 picks a free port (logged at start).', format: 'tcp-port', default: 7443, env: 'FEDLHS_GRPC_PORT', arg: 'grpc-port' },
  },
  tls: {
    mode: {
      doc: "'tls' (default) or 'plaintext'. Plaintext sends credentials and weights unencrypted: only for loopback demos and tests.",
      format: ['tls', 'plaintext'],
      default: 'tls',
      env: 'FEDLHS_TLS_MODE',
      arg: 'tls-mode',
    },
    cert: { doc: 'PEM server certificate (chain) file.', format: String, default: '', env: 'FEDLHS_TLS_CERT', arg: 'tls-cert' },
    key: { doc: 'PEM private key file of the server certificate.', format: String, default: '', env: 'FEDLHS_TLS_KEY', arg: 'tls-key', sensitive: true },
    clientCa: {
      doc: 'PEM CA bundle; if set, agents must present a client certificate signed by it (mutual TLS).',
      format: String,
      default: '',
      env: 'FEDLHS_TLS_CLIENT_CA',
      arg: 'tls-client-ca',
    },
    clientCertificates: {
      doc: "'external' (default): client certificates, if any, come from the operator's PKI (tls.clientCa). 'issued': the coordinator's own CA (<dataDir>/ca) issues each node a short-lived certificate at enrolment, renewed by the agent, and every Federation call must come with the certificate of its credential's node (mutual TLS).",
      format: ['external', 'issued'],
      default: 'external',
      env: 'FEDLHS_TLS_CLIENT_CERTIFICATES',
      arg: 'tls-client-certificates',
    },
    nodeCertificateSeconds: {
      doc: "Lifetime of a node certificate the coordinator issues (tls.clientCertificates 'issued'); agents renew at two thirds of it. 10 to 31622400 (366 days).",
      format: 'whole-number', default: 604800, env: 'FEDLHS_TLS_NODE_CERTIFICATE_SECONDS', arg: 'tls-node-certificate-seconds',
    },
    caValidityDays: {
      doc: "Lifetime of the node CA certificate created at first start (tls.clientCertificates 'issued'). 30 to 36500.",
      format: 'whole-number', default: 3650, env: 'FEDLHS_TLS_CA_VALIDITY_DAYS', arg: 'tls-ca-validity-days',
    },
    supersededGraceSeconds: {
      doc: "How long a node certificate superseded by a renewal is still accepted (tls.clientCertificates 'issued'), on a connection the coordinator then closes gracefully so that the agent's next calls present the renewed one. 0 to 3600.",
      format: 'whole-number', default: 60, env: 'FEDLHS_TLS_SUPERSEDED_GRACE_SECONDS', arg: 'tls-superseded-grace-seconds',
    },
  },
  admin: {
    host: { doc: 'Address the admin HTTP API binds. Keep it on loopback or an operator network.', format: String, default: '127.0.0.1', env: 'FEDLHS_ADMIN_HOST', arg: 'admin-host' },
    port: { doc: 'Admin HTTP API port; 0 picks a free port (logged at start).', format: 'tcp-port', default: 7480, env: 'FEDLHS_ADMIN_PORT', arg: 'admin-port' },
    token: {
      doc: 'Bearer token for the admin API. Empty: generated at first start and kept in <dataDir>/admin-token (mode 0600).',
      format: String,
      default: '',
      env: 'FEDLHS_ADMIN_TOKEN',
      arg: 'admin-token',
      sensitive: true,
    },
  },
  reportsDir: {
    doc: 'Directory of simulation and benchmark HTML reports the dashboard lists (empty: none).',
    format: String,
    default: '',
    env: 'FEDLHS_REPORTS_DIR',
    arg: 'reports-dir',
  },
  heartbeatIntervalMs: {
    doc: 'Heartbeat interval on agent sessions, in ms; a node silent for 3 intervals is offline.',
    format: 'whole-number',
    default: 5000,
    env: 'FEDLHS_HEARTBEAT_INTERVAL_MS',
    arg: 'heartbeat-interval-ms',
  },
  selectionGraceMs: {
    doc: 'Once a study has its minimum of READY clinics, how long (ms) to wait for more, up to its maximum, before starting a round.',
    format: 'whole-number',
    default: 2000,
    env: 'FEDLHS_SELECTION_GRACE_MS',
    arg: 'selection-grace-ms',
  },
  chunkBytes: {
    doc: 'Size of model download chunks in bytes (1 MiB to 4 MiB - 64 KiB, a multiple of 4).',
    format: 'whole-number',
    default: 1048576,
    env: 'FEDLHS_CHUNK_BYTES',
    arg: 'chunk-bytes',
  },
  maxHeldUpdateBytes: {
    doc: 'Memory (bytes) that order-statistic strategies (median, trimmed mean, Krum, Bulyan) may use to hold one round\'s updates; a study that could exceed it is refused at start.',
    format: 'whole-number',
    default: 4 * 1024 * 1024 * 1024,
    env: 'FEDLHS_MAX_HELD_UPDATE_BYTES',
    arg: 'max-held-update-bytes',
  },
  orderStatistics: {
    doc: "How order-statistic strategies (median, trimmed mean, Krum, Bulyan) sort and select: 'auto' uses WebAssembly SIMD where the runtime has it (else JavaScript, warned at start); 'javascript' forces the JavaScript networks (same results bit for bit, about 5x slower): an operator's switch should a runtime mis-run the hand-assembled WebAssembly.",
    format: ['auto', 'javascript'],
    default: 'auto',
    env: 'FEDLHS_ORDER_STATISTICS',
    arg: 'order-statistics',
  },
  backend: {
    doc: 'TensorFlow.js backend used to build initial models.',
    format: ['auto', 'tensorflow', 'wasm', 'cpu'],
    default: 'auto',
    env: 'FEDLHS_BACKEND',
    arg: 'backend',
  },
  log: {
    level: { doc: 'Log level.', format: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], default: 'info', env: 'FEDLHS_LOG_LEVEL', arg: 'log-level' },
    pretty: { doc: "Human-readable logs: 'auto' (when stdout is a TTY), 'true' or 'false'.", format: ['auto', 'true', 'false'], default: 'auto', env: 'FEDLHS_LOG_PRETTY', arg: 'log-pretty' },
  },
} as const;

export interface CoordinatorConfig {
  dataDir: string;
  store: { kind: 'sqlite' | 'postgres'; url: string; poolSize: number };
  ha: { enabled: boolean; leaseSeconds: number; advertiseAddress: string };
  series: { simulatedClock: boolean };
  blobs: { store: 'auto' | 'files' | 'postgres'; cacheBytes: number; gcGraceSeconds: number; gcIntervalSeconds: number };
  transfer: { inFlightBytes: number; uploadStreamsPerNode: number; sessionQueueMessages: number; uploadIdleSeconds: number; downloadIdleSeconds: number };
  storage: { probeIntervalSeconds: number; faultProbeIntervalSeconds: number };
  limits: {
    downloadStreamsPerNode: number; downloadStreamsTotal: number; sessionMessagesPerSecond: number; sessionMessageBurst: number;
    maxExamplesPerUpdate: number; modelMemoryBytes: number; authFailuresPerMinute: number;
  };
  grpc: { host: string; port: number };
  tls: { mode: 'tls' | 'plaintext'; cert: string; key: string; clientCa: string;
    /** Absent: 'external' (configs built in code before issue 15 leave the three out). */
    clientCertificates?: 'external' | 'issued'; nodeCertificateSeconds?: number; caValidityDays?: number; supersededGraceSeconds?: number;
  };
  admin: { host: string; port: number; token: string };
  reportsDir: string;
  heartbeatIntervalMs: number;
  selectionGraceMs: number;
  chunkBytes: number;
  maxHeldUpdateBytes: number;
  /** Absent: 'auto' (configs built in code before issue 15 leave it out). */
  orderStatistics?: 'auto' | 'javascript';
  backend: 'auto' | 'tensorflow' | 'wasm' | 'cpu';
  log: { level: string; pretty: 'auto' | 'true' | 'false' };
}

export type LoadConfigOptions = ConfigSources;

/** The blob store `blobs.store` names once 'auto' is resolved against `store.kind`. */
export function resolveBlobStore(c: Pick<CoordinatorConfig, 'store' | 'blobs'>): 'files' | 'postgres' {
  if (c.blobs.store !== 'auto') return c.blobs.store;
  return c.store.kind === 'postgres' ? 'postgres' : 'files';
}

/** The coordinator's bounds (limits.ts) from its configuration. */
export function limitsOf(c: Pick<CoordinatorConfig, 'limits' | 'transfer'>): CoordinatorLimits {
  return {
    ...c.limits,
    modelMemoryBytes: c.limits.modelMemoryBytes === 0 ? automaticModelMemoryBytes() : c.limits.modelMemoryBytes,
    uploadIdleMs: c.transfer.uploadIdleSeconds * 1000,
    downloadIdleMs: c.transfer.downloadIdleSeconds * 1000,
  };
}

/** Loads and strictly validates the configuration; throws ConfigError with a one-line message. */
export function loadCoordinatorConfig(options: LoadConfigOptions = {}): CoordinatorConfig {
  return loadConfig(coordinatorConfigSchema as unknown as convict.Schema<CoordinatorConfig>, options, (c) => {
    if (c.tls.mode === 'tls' && (c.tls.cert === '' || c.tls.key === '')) {
      throw new Error("tls.cert and tls.key: both are required when tls.mode is 'tls' (set tls.mode to 'plaintext' only for loopback demos)");
    }
    if (c.tls.clientCertificates === 'issued') {
      const key = { details: { key: 'tls.clientCertificates' } };
      if (c.tls.mode !== 'tls') throw new ConfigError("tls.clientCertificates: 'issued' needs tls.mode 'tls' (certificates are presented in the TLS handshake)", key);
      if (c.tls.clientCa !== '') throw new ConfigError("tls.clientCertificates: 'issued' verifies clients against the coordinator's own CA; leave tls.clientCa empty", key);
    }
    if (c.tls.nodeCertificateSeconds === undefined || c.tls.nodeCertificateSeconds < 10 || c.tls.nodeCertificateSeconds > 31_622_400) {
      throw new ConfigError(`tls.nodeCertificateSeconds: must be from 10 to 31622400: value was ${c.tls.nodeCertificateSeconds}`, { details: { key: 'tls.nodeCertificateSeconds' } });
    }
    if (c.tls.supersededGraceSeconds === undefined || c.tls.supersededGraceSeconds > 3600) {
      throw new ConfigError(`tls.supersededGraceSeconds: must be from 0 to 3600: value was ${c.tls.supersededGraceSeconds}`, { details: { key: 'tls.supersededGraceSeconds' } });
    }
    if (c.tls.caValidityDays === undefined || c.tls.caValidityDays < 30 || c.tls.caValidityDays > 36_500) {
      throw new ConfigError(`tls.caValidityDays: must be from 30 to 36500: value was ${c.tls.caValidityDays}`, { details: { key: 'tls.caValidityDays' } });
    }
    if (c.store.kind === 'postgres' && c.store.url === '') {
      throw new ConfigError("store.url: required when store.kind is 'postgres' (set FEDLHS_STORE_URL or --store-url to a postgres:// URL)", { details: { key: 'store.url' } });
    }
    if (c.store.kind === 'postgres' && !/^postgres(ql)?:\/\//i.test(c.store.url)) {
      throw new ConfigError('store.url: must be a postgres:// or postgresql:// URL: value was [sensitive]', { details: { key: 'store.url' } });
    }
    if (c.store.kind === 'sqlite' && c.store.url !== '') {
      throw new ConfigError("store.url: only used with store.kind 'postgres' (the SQLite store lives in dataDir): value was [sensitive]", { details: { key: 'store.url' } });
    }
    if (c.store.poolSize < 1 || c.store.poolSize > 100) {
      throw new ConfigError(`store.poolSize: must be from 1 to 100: value was ${c.store.poolSize}`, { details: { key: 'store.poolSize' } });
    }
    if (c.blobs.store === 'postgres' && c.store.kind !== 'postgres') {
      throw new ConfigError("blobs.store: 'postgres' keeps blobs beside the state, so it needs store.kind 'postgres' (and store.url)", { details: { key: 'blobs.store' } });
    }
    if (c.ha.enabled && c.store.kind !== 'postgres') {
      throw new ConfigError("ha.enabled: active/standby needs store.kind 'postgres' (both coordinators on one database)", { details: { key: 'ha.enabled' } });
    }
    if (c.ha.enabled && resolveBlobStore(c) !== 'postgres') {
      throw new ConfigError("ha.enabled: active/standby needs blobs.store 'postgres' or 'auto' (a standby must read the active's checkpoints)", { details: { key: 'blobs.store' } });
    }
    if (c.ha.leaseSeconds < 2 || c.ha.leaseSeconds > 300) {
      throw new ConfigError(`ha.leaseSeconds: must be from 2 to 300: value was ${c.ha.leaseSeconds}`, { details: { key: 'ha.leaseSeconds' } });
    }
    if (c.ha.advertiseAddress !== '') {
      const m = /^(?:[^\s:,[\]]+|\[[0-9a-fA-F:]+\]):(\d{1,5})$/.exec(c.ha.advertiseAddress);
      const port = m === null ? NaN : Number(m[1]);
      // Port 0 is "any free port" to bind, never an address agents can reach (review).
      if (!(port >= 1 && port <= 65535)) {
        throw new ConfigError(`ha.advertiseAddress: must be host:port with a port from 1 to 65535 (or empty): value was ${JSON.stringify(c.ha.advertiseAddress)}`, { details: { key: 'ha.advertiseAddress' } });
      }
    }
    if (c.blobs.gcGraceSeconds < 60) {
      // Shorter than a round's write-to-commit window would risk deleting a checkpoint being committed.
      throw new ConfigError(`blobs.gcGraceSeconds: must be at least 60: value was ${c.blobs.gcGraceSeconds}`, { details: { key: 'blobs.gcGraceSeconds' } });
    }
    if (c.transfer.uploadStreamsPerNode < 1) {
      throw new ConfigError(`transfer.uploadStreamsPerNode: must be at least 1: value was ${c.transfer.uploadStreamsPerNode}`, { details: { key: 'transfer.uploadStreamsPerNode' } });
    }
    if (c.transfer.sessionQueueMessages < 8) {
      throw new ConfigError(`transfer.sessionQueueMessages: must be at least 8: value was ${c.transfer.sessionQueueMessages}`, { details: { key: 'transfer.sessionQueueMessages' } });
    }
    if (c.transfer.inFlightBytes !== 0 && c.transfer.inFlightBytes < c.chunkBytes) {
      throw new ConfigError(`transfer.inFlightBytes: must be 0 (automatic) or at least chunkBytes (${c.chunkBytes}): value was ${c.transfer.inFlightBytes}`, { details: { key: 'transfer.inFlightBytes' } });
    }
    for (const key of ['downloadStreamsPerNode', 'downloadStreamsTotal', 'sessionMessagesPerSecond', 'sessionMessageBurst', 'maxExamplesPerUpdate', 'authFailuresPerMinute'] as const) {
      if (c.limits[key] < 1) throw new ConfigError(`limits.${key}: must be at least 1: value was ${c.limits[key]}`, { details: { key: `limits.${key}` } });
    }
    if (c.limits.downloadStreamsTotal < c.limits.downloadStreamsPerNode) {
      throw new ConfigError(`limits.downloadStreamsTotal: must be at least limits.downloadStreamsPerNode (${c.limits.downloadStreamsPerNode}): value was ${c.limits.downloadStreamsTotal}`, { details: { key: 'limits.downloadStreamsTotal' } });
    }
    for (const key of ['probeIntervalSeconds', 'faultProbeIntervalSeconds'] as const) {
      if (c.storage[key] < 1) throw new ConfigError(`storage.${key}: must be at least 1: value was ${c.storage[key]}`, { details: { key: `storage.${key}` } });
    }
    for (const key of ['uploadIdleSeconds', 'downloadIdleSeconds'] as const) {
      if (c.transfer[key] < 1) throw new ConfigError(`transfer.${key}: must be at least 1: value was ${c.transfer[key]}`, { details: { key: `transfer.${key}` } });
    }
    if (c.chunkBytes < 1048576 || c.chunkBytes > 4128768 || c.chunkBytes % 4 !== 0) {
      throw new Error(`chunkBytes: must be a multiple of 4 between 1048576 and 4128768: value was ${c.chunkBytes}`);
    }
  });
}
