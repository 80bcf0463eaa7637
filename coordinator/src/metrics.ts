import { PerformanceObserver, monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { logDrops, type LogDrops, type Logger } from '@fedlhs/service';

/** One group commit of the store (its onBatch observer): units (op lists), ops, and time to durable. */
export interface StoreBatchObservation {
  units: number;
  ops: number;
  ms: number;
}

/**
 * The coordinator's Prometheus metrics (prom-client), named by the usual conventions:
 * `fedlhs_` prefix, base units (seconds, bytes), `_total` on counters.
 */
/** Default prom-client metrics whose collection is O(open handles); left out (see the constructor). */
const EXPENSIVE_DEFAULT_METRICS = [
  'process_open_fds', 'nodejs_active_resources', 'nodejs_active_resources_total', 'nodejs_active_handles', 'nodejs_active_handles_total',
  'nodejs_active_requests', 'nodejs_active_requests_total',
] as const;

export class CoordinatorMetrics {
  readonly registry = new Registry();
  readonly rounds = new Counter({ name: 'fedlhs_rounds_total', help: 'Round attempts that ended, by outcome (committed or failed).', labelNames: ['outcome'], registers: [this.registry] });
  readonly roundDuration = new Histogram({
    name: 'fedlhs_round_duration_seconds', help: 'Duration of round attempts from start to commit or failure.', labelNames: ['outcome'],
    buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600], registers: [this.registry],
  });
  readonly participants = new Histogram({ name: 'fedlhs_round_participants', help: 'Clinics selected for a round.', buckets: [1, 2, 3, 5, 10, 20, 50, 100], registers: [this.registry] });
  readonly bytesIn = new Counter({ name: 'fedlhs_update_bytes_received_total', help: 'Model update payload bytes received from agents.', registers: [this.registry] });
  readonly bytesOut = new Counter({ name: 'fedlhs_model_bytes_sent_total', help: 'Model payload bytes sent to agents.', registers: [this.registry] });
  readonly rejected = new Counter({ name: 'fedlhs_rejected_updates_total', help: 'Rejected contributions, by reason.', labelNames: ['reason'], registers: [this.registry] });
  readonly sessionDrops = new Counter({
    name: 'fedlhs_session_drops_total', help: 'Control sessions dropped by the coordinator, by reason (heartbeat_timeout, stream_error, superseded, slow_consumer).',
    labelNames: ['reason'], registers: [this.registry],
  });
  readonly roundsUnevaluated = new Counter({
    name: 'fedlhs_rounds_unevaluated_total', help: 'Rounds committed although no clinic evaluated their model (warn event round.unevaluated).', registers: [this.registry],
  });
  readonly connectedNodes = new Gauge({ name: 'fedlhs_connected_nodes', help: 'Nodes with a live session.', registers: [this.registry] });
  readonly grpcRequests = new Counter({ name: 'fedlhs_grpc_requests_total', help: 'gRPC calls handled, by method and status code.', labelNames: ['method', 'code'], registers: [this.registry] });
  readonly grpcLatency = new Histogram({
    name: 'fedlhs_grpc_request_duration_seconds', help: 'gRPC call duration, by method and status code (streams: until they end).', labelNames: ['method', 'code'],
    buckets: [0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120, 600, 3600], registers: [this.registry],
  });

  readonly downloadInflightBytes = new Gauge({
    name: 'fedlhs_download_inflight_bytes', help: 'Model bytes read for downloads and not yet handed to the transport (bounded by transfer.inFlightBytes).', registers: [this.registry],
  });
  readonly downloadBudgetWaits = new Counter({
    name: 'fedlhs_download_budget_waits_total', help: 'Download chunks that waited for the in-flight byte budget.', registers: [this.registry],
  });
  readonly uploadsRefused = new Counter({
    name: 'fedlhs_upload_streams_refused_total', help: 'Upload streams refused with RESOURCE_EXHAUSTED (a node already had transfer.uploadStreamsPerNode open).', registers: [this.registry],
  });
  // Issue 11: bounds on what one node may cost, and what was refused at them.
  readonly downloadStreams = new Gauge({ name: 'fedlhs_download_streams', help: 'Model download streams open now (bounded by limits.downloadStreamsTotal).', registers: [this.registry] });
  readonly downloadsRefused = new Counter({
    name: 'fedlhs_download_streams_refused_total', help: 'Model downloads refused or ended, by reason (per_node, total, not_participant; idle: ended after transfer.downloadIdleSeconds without the client taking data).', labelNames: ['reason'], registers: [this.registry],
  });
  readonly sessionMessagesRefused = new Counter({
    name: 'fedlhs_session_messages_refused_total', help: 'Control-session messages refused and not stored, by reason (invalid, rate_limited, unknown_study).',
    labelNames: ['reason'], registers: [this.registry],
  });
  readonly authThrottled = new Counter({
    name: 'fedlhs_auth_throttled_total', help: 'Credential checks refused because their source made too many failed attempts (limits.authFailuresPerMinute), by surface (grpc, admin).',
    labelNames: ['surface'], registers: [this.registry],
  });
  readonly authFailures = new Counter({
    name: 'fedlhs_auth_failures_total', help: 'Failed credential checks, by surface (grpc, admin).', labelNames: ['surface'], registers: [this.registry],
  });
  readonly storageHealthy = new Gauge({
    name: 'fedlhs_storage_healthy', help: '1 while the data directory and store accept writes, 0 during a storage fault (disk full, read-only, I/O error).', registers: [this.registry],
  });
  readonly storageFaults = new Counter({
    name: 'fedlhs_storage_faults_total', help: 'Storage faults met, by kind (disk_full, read_only, io_error, unavailable).', labelNames: ['kind'], registers: [this.registry],
  });
  readonly rejectionsUnrecorded = new Counter({
    name: 'fedlhs_rejections_unrecorded_total', help: 'Rejected contributions answered but not recorded because their node sent more than 60 rejected calls a minute (warn rejection.unrecorded).', registers: [this.registry],
  });
  readonly studiesRefused = new Counter({
    name: 'fedlhs_studies_refused_total', help: "Studies refused at 'study start' because their model would not fit limits.modelMemoryBytes.", registers: [this.registry],
  });
  readonly storeBatchSize = new Histogram({
    name: 'fedlhs_store_batch_size', help: 'Size of each store group commit, in units (op lists) and in ops.', labelNames: ['of'],
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096], registers: [this.registry],
  });
  readonly storeCommitSeconds = new Histogram({
    name: 'fedlhs_store_commit_seconds', help: 'Time from the start of a store group commit until it was durable.',
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5], registers: [this.registry],
  });
  readonly gcSeconds = new Counter({ name: 'fedlhs_gc_seconds_total', help: 'Time spent in garbage collection pauses.', registers: [this.registry] });
  readonly logLinesDropped: Counter;
  private readonly loopDelay: IntervalHistogram = monitorEventLoopDelay({ resolution: 10 });
  private readonly gcObserver: PerformanceObserver;
  private readonly logDropSources = new Set<LogDrops>();
  private logDropsSeen = 0;

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'fedlhs_coordinator_' });
    this.storageHealthy.set(1);
    // These walk every open descriptor or libuv handle on each scrape (/proc/self/fd,
    // process._getActiveHandles()): with 10 000 connected clinics a scrape blocked the event loop
    // for ~50 ms. fedlhs_connected_nodes counts what matters here.
    for (const name of EXPENSIVE_DEFAULT_METRICS) this.registry.removeSingleMetric(`fedlhs_coordinator_${name}`);
    const loopDelay = this.loopDelay;
    loopDelay.enable();
    new Gauge({
      name: 'fedlhs_event_loop_delay_seconds', help: 'Event loop delay since the previous scrape: p99 and max.', labelNames: ['quantile'], registers: [this.registry],
      collect() {
        // percentile() and max are 0 before the first sample; the histogram is in nanoseconds.
        this.set({ quantile: '0.99' }, loopDelay.percentile(99) / 1e9);
        this.set({ quantile: 'max' }, loopDelay.max / 1e9);
        loopDelay.reset();
      },
    });
    this.gcObserver = new PerformanceObserver((list) => {
      let ms = 0;
      for (const entry of list.getEntries()) ms += entry.duration;
      if (ms > 0) this.gcSeconds.inc(ms / 1000);
    });
    this.gcObserver.observe({ entryTypes: ['gc'] });
    const sources = this.logDropSources;
    const seen = { get: () => this.logDropsSeen, set: (n: number) => void (this.logDropsSeen = n) };
    this.logLinesDropped = new Counter({
      name: 'fedlhs_log_lines_dropped_total', help: 'Log lines dropped because the log destination could not keep up (bounded logger).', registers: [this.registry],
      collect() {
        let total = 0;
        for (const d of sources) total += d.dropped;
        if (total > seen.get()) this.inc(total - seen.get());
        seen.set(total);
      },
    });
  }

  /** Counts the drops of a logger made by @fedlhs/service createLogger (no-op for other loggers). */
  trackLogDrops(logger: Logger): void {
    const drops = logDrops(logger);
    if (drops !== undefined) this.logDropSources.add(drops);
  }

  /** Records one store group commit (wire to the store's onBatch observer). */
  observeStoreBatch(batch: StoreBatchObservation): void {
    this.storeBatchSize.observe({ of: 'units' }, batch.units);
    this.storeBatchSize.observe({ of: 'ops' }, batch.ops);
    this.storeCommitSeconds.observe(batch.ms / 1000);
  }

  /** Stops the event-loop and GC observers (tests that make many instances). */
  close(): void {
    this.loopDelay.disable();
    this.gcObserver.disconnect();
  }

  /** Starts timing a gRPC call; call the result with the final status code name. */
  startCall(method: string): (code: string) => void {
    const start = process.hrtime.bigint();
    let done = false;
    return (code: string) => {
      if (done) return;
      done = true;
      this.grpcRequests.inc({ method, code });
      this.grpcLatency.observe({ method, code }, Number(process.hrtime.bigint() - start) / 1e9);
    };
  }
}
