import * as grpc from '@grpc/grpc-js';
import { loadFedlhsProto, type EnrolmentClient, type FederationClient } from '@fedlhs/proto';
import { KEEPALIVE_OPTIONS, bearerAuthorization, channelCredentials, type ClientTlsOptions } from '@fedlhs/service';

/**
 * The agent's connection to the coordinator: one HTTP/2 channel (keepalive and TLS set once, in
 * `createClients`) carrying both services. The node credential goes on each call with
 * `authMetadata`, and transient failures are retried by the task runner against the task's
 * deadline using `RETRYABLE_CODES`.
 *
 * Active/standby coordinators (issue 15): `coordinator.address` may name several coordinators,
 * comma-separated. The clients then ride a channel per address behind one `FailoverChannel`, and
 * `select` moves them to the first address whose grpc.health.v1 status is SERVING (a standby
 * reports NOT_SERVING and refuses work with NOT_LEADER).
 */
export interface Clients {
  enrolment: EnrolmentClient;
  federation: FederationClient;
  /** The coordinator address the clients use now. */
  readonly address: string;
  /**
   * With several addresses: probes them in order and uses the first that is SERVING (logged,
   * agent.coordinator_selected); undefined if none is (agent.no_coordinator_serving). With one
   * address: that address, without a probe (as before).
   */
  select(log?: SelectLogger): Promise<string | undefined>;
  close(): void;
}

/** The part of a logger `select` uses (pino's fits). */
export interface SelectLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/** The addresses of a `coordinator.address` value: one host:port, or several comma-separated. */
export function coordinatorAddresses(value: string): string[] {
  return value.split(',').map((a) => a.trim()).filter((a) => a !== '');
}

/**
 * The agent's HTTP/2 receive window, per stream and for the connection (grpc-js
 * 'grpc-node.flow_control_window'; HTTP/2's default is 64 KiB). Set deliberately (issue 15): with
 * 64 KiB in flight a model download advances one window per round trip through both event loops,
 * and the agent, busy checking the chunk before, answers late. 8 MiB is two of the largest
 * chunks (MAX_CHUNK_BYTES): the coordinator keeps one whole chunk on the wire while the agent
 * checks the previous one, and at most that much arrives unread per stream. Uploads are paced by
 * the coordinator's window (coordinator grpc/flow-control.ts: the same 8 MiB per stream).
 */
export const AGENT_FLOW_CONTROL_WINDOW_BYTES = 8 * 1024 * 1024;

/**
 * gRPC clients for the coordinator(s), sharing one channel with keepalive and TLS as configured.
 * `secure`: credentials made elsewhere (a node certificate that renews: certificates-renewal.ts).
 */
export function createClients(address: string, tls: ClientTlsOptions, secure?: { credentials: grpc.ChannelCredentials; options: grpc.ChannelOptions }): Clients {
  const proto = loadFedlhsProto();
  const { credentials, options } = secure ?? channelCredentials(tls);
  const channelOptions: grpc.ChannelOptions = { ...KEEPALIVE_OPTIONS, 'grpc-node.flow_control_window': AGENT_FLOW_CONTROL_WINDOW_BYTES, ...options };
  const addresses = coordinatorAddresses(address);
  if (addresses.length <= 1) {
    const federation = new proto.fedlhs.v1.Federation(address, credentials, channelOptions);
    // Share the federation client's channel so both services ride one HTTP/2 connection.
    const enrolment = new proto.fedlhs.v1.Enrolment(address, credentials, { ...channelOptions, channelOverride: federation.getChannel() });
    return {
      enrolment,
      federation,
      address,
      select: async () => address,
      close() {
        federation.close();
        enrolment.close();
      },
    };
  }
  const channel = new FailoverChannel(addresses, credentials, channelOptions);
  const federation = new proto.fedlhs.v1.Federation(addresses[0]!, credentials, { ...channelOptions, channelOverride: channel });
  const enrolment = new proto.fedlhs.v1.Enrolment(addresses[0]!, credentials, { ...channelOptions, channelOverride: channel });
  return {
    enrolment,
    federation,
    get address() {
      return channel.current;
    },
    async select(log) {
      const tried: { address: string; status: string }[] = [];
      for (const a of addresses) {
        const status = await healthStatus(channel.channelOf(a), a);
        tried.push({ address: a, status });
        if (status !== 'SERVING') continue;
        const changed = channel.current !== a;
        channel.use(a);
        log?.info({ event: 'agent.coordinator_selected', address: a, changed, tried }, `using coordinator ${a}${tried.length > 1 ? ` (${tried.slice(0, -1).map((t) => `${t.address}: ${t.status}`).join(', ')})` : ''}`);
        return a;
      }
      log?.warn({ event: 'agent.no_coordinator_serving', tried }, `no coordinator is serving: ${tried.map((t) => `${t.address}: ${t.status}`).join(', ')}`);
      return undefined;
    },
    close() {
      federation.close();
      enrolment.close();
      channel.close();
    },
  };
}

/** How long a health probe of one coordinator address may take. */
const PROBE_MS = 3000;
const HEALTH_STATUS = ['UNKNOWN', 'SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN'] as const;

/**
 * The grpc.health.v1 status of the server behind `channel` ('' service: the whole coordinator),
 * or why it has none ('unreachable: UNAVAILABLE', ...). The request is the empty message and the
 * answer one varint field (status = 1), so they are encoded here rather than loading health.proto.
 */
export function healthStatus(channel: grpc.Channel | grpc.ChannelInterface, address: string): Promise<string> {
  const client = new grpc.Client(address, grpc.credentials.createInsecure(), { channelOverride: channel as grpc.ChannelInterface });
  return new Promise((resolve) => {
    client.makeUnaryRequest<Buffer, Buffer>(
      '/grpc.health.v1.Health/Check', (b) => b, (b) => b, Buffer.alloc(0), { deadline: deadlineIn(PROBE_MS) },
      (err, answer) => {
        if (err !== null || answer === undefined) {
          resolve(`unreachable: ${err === null ? 'no answer' : (grpc.status[err.code] ?? String(err.code))}`);
          return;
        }
        // HealthCheckResponse { ServingStatus status = 1; }: tag 0x08 then the value (0 when absent).
        const value = answer.length >= 2 && answer[0] === 0x08 ? answer[1]! : 0;
        resolve(HEALTH_STATUS[value] ?? `status ${value}`);
      },
    );
  });
}

/**
 * A grpc-js channel that sends each new call over the channel of the address in use (`use`), one
 * HTTP/2 channel per address, made on first use. Calls already open stay on their channel.
 */
export class FailoverChannel implements grpc.ChannelInterface {
  private readonly channels = new Map<string, grpc.Channel>();
  private inUse: string;

  constructor(private readonly addresses: readonly string[], private readonly credentials: grpc.ChannelCredentials, private readonly options: grpc.ChannelOptions) {
    this.inUse = addresses[0]!;
  }

  /** The address new calls go to. */
  get current(): string {
    return this.inUse;
  }

  /** Sends new calls to `address` (one of the addresses). */
  use(address: string): void {
    if (!this.addresses.includes(address)) throw new Error(`${address} is not one of the coordinator addresses`);
    this.inUse = address;
  }

  /** The channel of one address. */
  channelOf(address: string): grpc.Channel {
    let c = this.channels.get(address);
    if (c === undefined) this.channels.set(address, (c = new grpc.Channel(address, this.credentials, this.options)));
    return c;
  }

  close(): void {
    for (const c of this.channels.values()) c.close();
  }
  getTarget(): string {
    return this.channelOf(this.inUse).getTarget();
  }
  getConnectivityState(tryToConnect: boolean): grpc.connectivityState {
    return this.channelOf(this.inUse).getConnectivityState(tryToConnect);
  }
  watchConnectivityState(currentState: grpc.connectivityState, deadline: Date | number, callback: (error?: Error) => void): void {
    this.channelOf(this.inUse).watchConnectivityState(currentState, deadline, callback);
  }
  getChannelzRef(): ReturnType<grpc.ChannelInterface['getChannelzRef']> {
    return this.channelOf(this.inUse).getChannelzRef();
  }
  createCall(...args: Parameters<grpc.ChannelInterface['createCall']>): ReturnType<grpc.ChannelInterface['createCall']> {
    return this.channelOf(this.inUse).createCall(...args);
  }
}

/** Call metadata carrying the node credential ("authorization: Bearer <credential>", federation.proto "Authentication"). */
export function authMetadata(credential: string): grpc.Metadata {
  const md = new grpc.Metadata();
  md.set('authorization', bearerAuthorization(credential));
  return md;
}

/** A deadline `ms` from now. */
export function deadlineIn(ms: number): grpc.Deadline {
  return new Date(Date.now() + ms);
}

/**
 * Codes worth retrying: the coordinator was unreachable or restarting (UNAVAILABLE), the call
 * ran out of time (DEADLINE_EXCEEDED), lost a race with itself (ABORTED), or is shedding load
 * (RESOURCE_EXHAUSTED). Everything else
 * (authentication, validation, stale work) will fail the same way again.
 */
export const RETRYABLE_CODES: ReadonlySet<number> = new Set([grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED, grpc.status.ABORTED, grpc.status.RESOURCE_EXHAUSTED]);

/** Whether `err` is a gRPC status error (a status code and trailers), as grpc-js rejects with. */
export function isServiceError(err: unknown): err is grpc.ServiceError {
  return typeof err === 'object' && err !== null && 'code' in err && typeof (err as { code: unknown }).code === 'number' && 'metadata' in err;
}
