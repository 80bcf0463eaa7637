import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * The coordinator's Prometheus metrics (prom-client), named by the usual conventions:
 * `fedlhs_` prefix, base units (seconds, bytes), `_total` on counters.
 */
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
  readonly connectedNodes = new Gauge({ name: 'fedlhs_connected_nodes', help: 'Nodes with a live session.', registers: [this.registry] });
  readonly grpcRequests = new Counter({ name: 'fedlhs_grpc_requests_total', help: 'gRPC calls handled, by method and status code.', labelNames: ['method', 'code'], registers: [this.registry] });
  readonly grpcLatency = new Histogram({
    name: 'fedlhs_grpc_request_duration_seconds', help: 'gRPC call duration, by method and status code (streams: until they end).', labelNames: ['method', 'code'],
    buckets: [0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120, 600, 3600], registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'fedlhs_coordinator_' });
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
