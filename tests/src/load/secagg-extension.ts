/**
 * The secure-aggregation bench's worker extension (swarm-worker.ts loads it through
 * FEDLHS_LOAD_EXTENSION): every clinic gets a byte-counting Federation client, and with
 * `secagg` in the configuration a secure-aggregation stage handler. The configuration is the
 * JSON of FEDLHS_SECAGG_BENCH ({outDir, secagg?}); at stop the worker's byte counts go to
 * <outDir>/bytes-<pid>.json.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { SecAggStageHandler, computeMs, type SecAggRoundConfig } from './secagg-stages.js';
import { emptyWireBytes, meteredFederationClient, type WireBytes } from './wire-meter.js';
import type { WorkerExtension } from './worker-extension.js';

/** FEDLHS_SECAGG_BENCH. */
export interface SecAggBenchWorkerConfig {
  outDir: string;
  secagg?: SecAggRoundConfig;
}

/** What a worker writes at stop: its clinics and their bytes, summed. */
export interface WorkerBytesFile {
  pid: number;
  clinics: number;
  bytes: WireBytes;
  /** CPU time of the clinics' secure-aggregation steps (secagg-stages.ts computeMs). */
  computeMs: typeof computeMs;
}

/** As the load clinic's channels: one HTTP/2 connection per clinic. */
const CHANNEL_OPTIONS: grpc.ChannelOptions = { 'grpc.use_local_subchannel_pool': 1, 'grpc.max_receive_message_length': 8 * 1024 * 1024 };

function config(): SecAggBenchWorkerConfig {
  const text = process.env.FEDLHS_SECAGG_BENCH;
  if (text === undefined) throw new Error('FEDLHS_SECAGG_BENCH is not set: the secure-aggregation bench extension needs {outDir, secagg?}');
  const c = JSON.parse(text) as SecAggBenchWorkerConfig;
  if (typeof c.outDir !== 'string' || c.outDir === '') throw new Error('FEDLHS_SECAGG_BENCH.outDir must be a directory');
  return c;
}

export function createWorkerExtension(): WorkerExtension {
  const c = config();
  const bytes = emptyWireBytes();
  let clinics = 0;
  return {
    forClinic(address, nodeId, credential, counters) {
      clinics++;
      const client = meteredFederationClient(address, CHANNEL_OPTIONS, bytes);
      if (c.secagg === undefined) return { client };
      const metadata = new grpc.Metadata();
      metadata.set('authorization', `Bearer ${credential}`);
      const handler = new SecAggStageHandler(client, metadata, nodeId, c.secagg, counters);
      return { client, onTask: (task, fail) => handler.onTask(task, fail) };
    },
    finish() {
      const file: WorkerBytesFile = { pid: process.pid, clinics, bytes, computeMs };
      writeFileSync(join(c.outDir, `bytes-${process.pid}.json`), `${JSON.stringify(file)}\n`);
    },
  };
}
