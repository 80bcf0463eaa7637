import * as grpc from '@grpc/grpc-js';
import { loadFedlhsProto, type AgentMessage, type CoordinatorMessage__Output, type FederationClient, type Study__Output } from '@fedlhs/proto';
import { coordinatorMain, startCoordinator, type CoordinatorHandle } from '@fedlhs/simulator';

/**
 * A control session written against the .proto alone, that sends whatever it is told to, as
 * fast as the transport takes it: for the session limits of issue 11 (strings past their
 * maximum, control characters, unknown studies, floods).
 */
export class RogueSession {
  private readonly client: FederationClient;
  private readonly call: grpc.ClientDuplexStream<AgentMessage, CoordinatorMessage__Output>;
  /** Studies announced on this session, by id. */
  readonly studies = new Map<string, Study__Output>();
  /** Resolves with the status that ended the stream (code 0 for a clean end). */
  readonly ended: Promise<{ code: number; details: string; metadata: Record<string, string> }>;
  private done = false;
  readonly welcomed: Promise<void>;
  /** Messages the transport accepted (written). */
  sent = 0;

  /** `hello` 'none': open the stream and send nothing (a client that never says Hello). */
  constructor(address: string, credential: string, hello: AgentMessage['hello'] | 'none' = { agent: { agentVersion: 'rogue-session/1.0', trainingBackend: 'none', platform: 'test' }, activeTaskIds: [] }) {
    const proto = loadFedlhsProto();
    this.client = new proto.fedlhs.v1.Federation(address, grpc.credentials.createInsecure(), { 'grpc.max_send_message_length': 8 * 1024 * 1024 });
    const md = new grpc.Metadata();
    md.set('authorization', `Bearer ${credential}`);
    this.call = this.client.Session(md);
    this.ended = new Promise((resolve) => {
      this.call.on('status', (s: grpc.StatusObject) => {
        this.done = true;
        const metadata: Record<string, string> = {};
        for (const [k, v] of Object.entries(s.metadata.getMap())) metadata[k] = String(v);
        resolve({ code: s.code, details: s.details, metadata });
      });
    });
    this.call.on('error', () => {}); // the status above says how it ended
    this.welcomed = new Promise((resolve) => {
      this.call.on('data', (m: CoordinatorMessage__Output) => {
        if (m.welcome) resolve();
        if (m.study?.study) this.studies.set(m.study.study.studyId, m.study.study);
      });
    });
    if (hello !== 'none') void this.write({ hello });
  }

  /**
   * A ListStudies call on this session's connection, after the Session stream: once it is
   * answered the coordinator has taken the stream (HTTP/2 streams of one connection are handled
   * in order), so what a test does next happens to an open session.
   */
  roundTrip(credential: string): Promise<void> {
    const md = new grpc.Metadata();
    md.set('authorization', `Bearer ${credential}`);
    return new Promise((resolve) => this.client.ListStudies({ includeEnded: false }, md, () => resolve()));
  }

  /** Whether the stream has ended. */
  get closed(): boolean {
    return this.done;
  }

  /** Writes one message; resolves when the transport can take more (backpressure). */
  async write(message: AgentMessage): Promise<void> {
    if (this.done) return;
    this.sent++;
    if (this.call.write(message)) return;
    // A stream that ends never drains.
    let onDrain: (() => void) | undefined;
    await Promise.race([new Promise<void>((resolve) => this.call.once('drain', (onDrain = resolve))), this.ended]);
    if (onDrain !== undefined) this.call.off('drain', onDrain);
  }

  /**
   * Sends `make(i)` as fast as the transport takes it until the stream ends, `count` messages
   * were sent or `ms` passed. Resolves with the number sent.
   */
  async flood(make: (i: number) => AgentMessage, opts: { count?: number; ms?: number } = {}): Promise<number> {
    const until = opts.ms === undefined ? Number.POSITIVE_INFINITY : Date.now() + opts.ms;
    let i = 0;
    while (!this.done && i < (opts.count ?? Number.POSITIVE_INFINITY) && Date.now() < until) await this.write(make(i++));
    return i;
  }

  close(): void {
    if (!this.done) this.call.cancel();
    this.client.close();
  }
}

/**
 * `fedlhs-coordinator serve` from a given build (`main`, default this checkout's) on port 0,
 * as the simulator's startCoordinator does: lets a test run against another build, e.g. the
 * code before a fix (FEDLHS_COORDINATOR_MAIN=/work/before/coordinator/dist/main.js).
 */
export function startCoordinatorFrom(main: string, options: { dataDir: string; env?: NodeJS.ProcessEnv; name?: string }): Promise<CoordinatorHandle> {
  return startCoordinator({ ...options, main });
}

/** The coordinator build integration tests of issue 11 run against: FEDLHS_COORDINATOR_MAIN or this checkout's. */
export const testedCoordinatorMain = process.env.FEDLHS_COORDINATOR_MAIN ?? coordinatorMain;
