import * as grpc from '@grpc/grpc-js';
import type { Logger } from '@fedlhs/service';
import type { Coordinator } from '../coordinator.js';
import type { CoordinatorMetrics } from '../metrics.js';
import type { TransferOptions } from './transfer.js';

/** What every fedlhs.v1.Federation handler gets: the domain, its logger and metrics, the transfer bounds. */
export interface HandlerContext {
  coordinator: Coordinator;
  log: Logger;
  metrics: CoordinatorMetrics;
  transfer: TransferOptions;
}

/** Wraps a unary callback so the call is counted and timed with its final status. */
export function timed<T>(coordinator: Coordinator, method: string, callback: grpc.sendUnaryData<T>): grpc.sendUnaryData<T> {
  const done = coordinator.metrics.startCall(method);
  return (err, value) => {
    done(err == null ? 'OK' : grpc.status[(err as { code?: number }).code ?? grpc.status.UNKNOWN] ?? 'UNKNOWN');
    callback(err, value);
  };
}

/** The name of a gRPC status code, for metrics. */
export function statusName(code: number | undefined): string {
  return grpc.status[code ?? grpc.status.UNKNOWN] ?? 'UNKNOWN';
}
