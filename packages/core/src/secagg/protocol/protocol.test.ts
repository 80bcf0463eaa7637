import { describe, expect, it } from 'vitest';
import { sumWords, type MaskWords } from '../masks.js';
import { dequantizeSum, modulusBits, quantizationParams, quantize } from '../quantize.js';
import { packWords } from '../pack.js';
import {
  SecAggClient,
  SecAggServer,
  createSecAggIdentity,
  fromBase64,
  memoryPins,
  resolveRound,
  toBase64,
  type ConsistencyRequest,
  type MaskedInputRequest,
  type RoundContext,
  type SecAggIdentity,
  type UnmaskMessage,
  type UnmaskRequest,
} from './index.js';
import { thrown } from '../test-support.js';


/** Messages cross a JSON wire in every test: what the state machines get is what a transport delivers. */
const wire = <T>(m: T): unknown => JSON.parse(JSON.stringify(m));
const bytes = (m: unknown): number => Buffer.byteLength(JSON.stringify(m));

/** A small deterministic generator for test choices (which clinics drop, the inputs). */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function pick<T>(items: readonly T[], count: number, rand: () => number): T[] {
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [copy[i], copy[j]] = [copy[j]!, copy[i]!];
  }
  return copy.slice(0, count);
}

const ids = (n: number): string[] => Array.from({ length: n }, (_, i) => `clinic-${String(i).padStart(2, '0')}`);

function baseCtx(over: Partial<RoundContext> = {}): RoundContext {
  return { studyId: 'study-a', round: 4, attempt: 0, k: 8, graph: 'ring', valueBits: 16, clipRange: 1, vectorLength: 64, ...over };
}

interface Drops {
  /** Clinics that answer nothing after their keys. */
  afterKeys?: (alive: string[]) => string[];
  afterShares?: (alive: string[]) => string[];
  /** In the sum, but answer nothing after their masked input (neither consistency nor unmask). */
  afterMasked?: (alive: string[]) => string[];
  /** Signed the survivor set, but do not unmask. */
  afterConsistency?: (alive: string[]) => string[];
}

interface Hooks {
  maskedRequest?: (id: string, req: MaskedInputRequest) => MaskedInputRequest;
  unmaskMessage?: (id: string, m: UnmaskMessage) => UnmaskMessage;
  beforeFinish?: (server: SecAggServer) => void;
  /** Stop after this stage's requests were answered (the clients are left where they are). */
  stopAfter?: 'masked' | 'consistency';
}

/** One identity per clinic, each pinning its peers in its own map: tests can inspect and reuse the pins. */
function identities(cohort: readonly string[], pins = new Map<string, Map<string, Uint8Array>>()): Map<string, SecAggIdentity> {
  return new Map(
    cohort.map((id) => {
      const mine = pins.get(id) ?? new Map<string, Uint8Array>();
      pins.set(id, mine);
      return [id, createSecAggIdentity({ checkPeer: memoryPins(mine) })];
    }),
  );
}

/** Runs one round in process, every message through JSON; returns what a test checks. */
function runRound(ctx: RoundContext, n: number, drops: Drops = {}, hooks: Hooks = {}, seed = 1, ids0?: Map<string, SecAggIdentity>) {
  const cohort = ids(n);
  const rand = lcg(seed);
  const inputs = new Map(cohort.map((id) => [id, Float64Array.from({ length: ctx.vectorLength }, () => (2 * rand() - 1) * ctx.clipRange)]));
  const idents = ids0 ?? identities(cohort);
  const clients = new Map(cohort.map((id) => [id, new SecAggClient(ctx, id, idents.get(id)!)]));
  const server = new SecAggServer(ctx, cohort);
  const traffic = { up: [0, 0, 0, 0, 0], down: [0, 0, 0, 0, 0] };

  let alive = [...cohort];
  for (const id of alive) {
    const m = clients.get(id)!.keys();
    traffic.up[0]! += bytes(m);
    server.receiveKeys(id, wire(m));
  }
  const gone1 = drops.afterKeys?.(alive) ?? [];
  alive = alive.filter((id) => !gone1.includes(id));

  const req2 = server.sharesRequests();
  for (const [id, req] of req2) {
    if (!alive.includes(id)) continue;
    traffic.down[1]! += bytes(req);
    const m = clients.get(id)!.shares(wire(req));
    traffic.up[1]! += bytes(m);
    server.receiveShares(id, wire(m));
  }
  alive = alive.filter((id) => req2.has(id));
  const gone2 = drops.afterShares?.(alive) ?? [];
  alive = alive.filter((id) => !gone2.includes(id));

  const req3 = server.maskedInputRequests();
  for (const [id, req] of req3) {
    if (!alive.includes(id)) continue;
    traffic.down[2]! += bytes(req);
    const { message, vector } = clients.get(id)!.maskedInput(wire(hooks.maskedRequest ? hooks.maskedRequest(id, req) : req), inputs.get(id)!);
    traffic.up[2]! += bytes(message) + vector.length;
    server.receiveMaskedInput(id, wire(message), vector);
  }
  alive = alive.filter((id) => req3.has(id));
  const inSum = [...alive];
  const gone3 = drops.afterMasked?.(alive) ?? [];
  alive = alive.filter((id) => !gone3.includes(id));
  const partial = { server, clients, inputs, inSum, idents, req3 };
  if (hooks.stopAfter === 'masked') return { ...partial, responders: alive, req4: new Map<string, ConsistencyRequest>(), req5: new Map<string, UnmaskRequest>(), traffic, expected: () => expected(ctx, n, inSum, inputs), finish: () => server.finish() };

  const req4 = server.consistencyRequests();
  for (const [id, req] of req4) {
    if (!alive.includes(id)) continue;
    traffic.down[3]! += bytes(req);
    const m = clients.get(id)!.consistency(wire(req));
    traffic.up[3]! += bytes(m);
    server.receiveConsistency(id, wire(m));
  }
  const gone4 = drops.afterConsistency?.(alive) ?? [];
  alive = alive.filter((id) => !gone4.includes(id));
  if (hooks.stopAfter === 'consistency') return { ...partial, responders: alive, req4, req5: new Map<string, UnmaskRequest>(), traffic, expected: () => expected(ctx, n, inSum, inputs), finish: () => server.finish() };

  const req5 = server.unmaskRequests();
  for (const [id, req] of req5) {
    if (!alive.includes(id)) continue;
    traffic.down[4]! += bytes(req);
    const answer = clients.get(id)!.unmask(wire(req));
    const m = hooks.unmaskMessage ? hooks.unmaskMessage(id, answer) : answer;
    traffic.up[4]! += bytes(m);
    server.receiveUnmask(id, wire(m));
  }
  hooks.beforeFinish?.(server);
  return { ...partial, responders: alive.filter((id) => req5.has(id)), req4, req5, traffic, expected: () => expected(ctx, n, inSum, inputs), finish: () => server.finish() };
}

function expected(ctx: RoundContext, n: number, inSum: readonly string[], inputs: ReadonlyMap<string, Float64Array>) {
  const bits = modulusBits(n, ctx.valueBits);
  const spec = { clip: ctx.clipRange, valueBits: ctx.valueBits, clients: n };
  const q = inSum.map((id) => quantize(inputs.get(id)!, spec));
  const float = new Float64Array(ctx.vectorLength);
  for (const id of inSum) inputs.get(id)!.forEach((v, i) => (float[i]! += v));
  return { quantised: q, exact: dequantizeSum(sumWords(q, ctx.vectorLength, bits), inSum.length, spec, bits), float, step: quantizationParams(spec).step };
}

function expectCommits(round: ReturnType<typeof runRound>): void {
  const result = round.finish();
  const { exact, float, step } = round.expected();
  expect(round.server.included).toEqual([...round.inSum].sort());
  // Exactly the sum of the quantised inputs, and so within n·step/2 of the float sum.
  expect(result).toEqual(exact);
  const bound = (round.inSum.length * step) / 2 + 1e-9;
  result.forEach((v, i) => expect(Math.abs(v - float[i]!)).toBeLessThanOrEqual(bound));
}

const thirty = (rand: () => number) => (alive: string[]) => pick(alive, Math.floor(0.3 * alive.length + 1e-9), rand);

describe('SecAgg+ round', () => {
  it('commits the exact sum with no dropouts (ring and random-regular)', () => {
    expectCommits(runRound(baseCtx(), 10));
    expectCommits(runRound(baseCtx({ graph: 'random-regular', k: 4 }), 10));
  });

  it('n = 10: 30 % dropped after keys, after shares, after masked input, after consistency — each alone', () => {
    const rand = lcg(7);
    for (const stage of ['afterKeys', 'afterShares', 'afterMasked', 'afterConsistency'] as const) {
      const round = runRound(baseCtx({ graph: 'random-regular' }), 10, { [stage]: thirty(rand) });
      expect(round.inSum.length).toBe(stage === 'afterMasked' || stage === 'afterConsistency' ? 10 : 7);
      expectCommits(round);
    }
  });

  it('n = 10: 30 % dropped at every stage in one round (k = 9, t = 3)', () => {
    const rand = lcg(11);
    const round = runRound(baseCtx({ graph: 'random-regular', k: 9, threshold: 3 }), 10, { afterKeys: thirty(rand), afterShares: thirty(rand), afterMasked: thirty(rand) });
    expect(round.inSum.length).toBe(5); // 10 → 7 → 5 sent inputs, 4 of them unmask
    expect(round.responders.length).toBe(4);
    expectCommits(round);
  });

  it('n = 50: 30 % dropped at every stage in one round (random 30-regular, t = 4)', () => {
    const rand = lcg(13);
    const round = runRound(baseCtx({ graph: 'random-regular', k: 30, threshold: 4, vectorLength: 32 }), 50, { afterKeys: thirty(rand), afterShares: thirty(rand), afterMasked: thirty(rand) });
    expect(round.inSum.length).toBe(25);
    expect(round.responders.length).toBe(18);
    expectCommits(round);
  });

  it('too many dropouts after masked input: the unmask stage is not even asked, naming the survivor', () => {
    const ctx = baseCtx({ k: 4 }); // t = 3 of 4 neighbours
    const victim = 'clinic-05';
    const neighbours = resolveRound(ctx, ids(10)).graph.get(victim)!;
    const err = thrown(() => runRound(ctx, 10, { afterMasked: () => neighbours.slice(0, 2) }));
    expect(err.code).toBe('ATTEMPT_ABORTED');
    expect(err.message).toMatch(/^secure aggregation: survivor clinic-\d\d has [0-2] live neighbours, fewer than t = 3: its input cannot be unmasked$/);
  });

  it('too many dropouts after consistency: finish throws naming the survivor, and nothing is held after', () => {
    const ctx = baseCtx({ k: 4 });
    const victim = 'clinic-05';
    const neighbours = resolveRound(ctx, ids(10)).graph.get(victim)!;
    const round = runRound(ctx, 10, { afterConsistency: () => neighbours.slice(0, 2) });
    const err = thrown(() => round.finish());
    expect(err.code).toBe('ATTEMPT_ABORTED');
    // finish checks survivors in id order: the first with fewer than 3 shares of its self mask is named.
    const held = (id: string) => resolveRound(ctx, ids(10)).graph.get(id)!.filter((x) => round.responders.includes(x)).length;
    const first = [...round.inSum].sort().find((id) => held(id) < 3)!;
    expect(held(victim)).toBe(2);
    expect(err.message).toBe(`secure aggregation: survivor ${first} has ${held(first)} shares of its self-mask seed, fewer than t = 3: its input cannot be unmasked`);
    expect(round.server.heldVectors()).toEqual([]);
  });

  it('a survivor left with too few neighbours after stage 3 fails the round before any share is asked', () => {
    const ctx = baseCtx({ k: 4 });
    const victim = 'clinic-03';
    const [a, b] = resolveRound(ctx, ids(10)).graph.get(victim)!;
    const err = thrown(() => runRoundDroppingInputs(ctx, [a!, b!]));
    expect(err.code).toBe('ATTEMPT_ABORTED');
    expect(err.message).toMatch(/survivor clinic-\d\d has [0-2] live neighbours, fewer than t = 3/);
  });

  it('a tampered or forged ciphertext is refused by its receiver, naming the sender', () => {
    for (const kind of ['flip', 'forge', 'redirect'] as const) {
      let sender = '';
      const err = thrown(() =>
        runRound(baseCtx(), 10, {}, {
          maskedRequest: (id, req) => {
            if (id !== 'clinic-02') return req;
            const first = req.ciphertexts[0]!;
            sender = first.from;
            const sealed = fromBase64(first.ciphertext).slice();
            if (kind === 'flip') sealed[40]! ^= 1;
            if (kind === 'forge') sealed.fill(7);
            // Another ciphertext of the same size, sealed by the same sender for someone else.
            const other = kind === 'redirect' ? req.ciphertexts[1]!.ciphertext : toBase64(sealed);
            return { ...req, ciphertexts: [{ from: sender, ciphertext: other }, ...req.ciphertexts.slice(1)] };
          },
        }),
      );
      expect(err.code).toBe('INVALID_ARGUMENT');
      expect(err.message).toContain(`a tampered share from ${sender}`);
      expect(err.details).toEqual({ field: 'maskedInputRequest.ciphertexts[0].ciphertext' });
    }
  });

  it('the server refuses a packed vector of the wrong length or with padding bits set, and a message with fields', () => {
    const ctx = baseCtx({ vectorLength: 63 }); // 63 · 20 bits = 157.5 bytes: 158 with 4 padding bits
    expect(modulusBits(10, ctx.valueBits)).toBe(20);
    const fresh = freshMaskedStage(ctx);
    const header = { studyId: ctx.studyId, round: ctx.round, attempt: ctx.attempt };
    const good = packWords(new Uint32Array(63), 20);
    expect(good.length).toBe(158);
    let err = thrown(() => fresh.receiveMaskedInput('clinic-00', header, good.subarray(0, 157)));
    expect(err.message).toMatchInlineSnapshot(`"vector: must be 158 bytes (63 values of 20 bits), got 157"`);
    expect(err.details).toEqual({ field: 'vector' });
    const padded = good.slice();
    padded[157] = 0x10;
    err = thrown(() => fresh.receiveMaskedInput('clinic-00', header, padded));
    expect(err.message).toMatchInlineSnapshot(`"vector: the 4 padding bits of the last byte must be zero"`);
    expect(thrown(() => fresh.receiveMaskedInput('clinic-00', { ...header, masked: 'AAAA' }, good)).details).toEqual({ field: 'maskedInput' });
    expect(thrown(() => fresh.receiveMaskedInput('clinic-00', { ...header, round: 3 }, good)).code).toBe('STALE');
    expect(thrown(() => fresh.receiveMaskedInput('intruder', header, good)).code).toBe('NOT_ASSIGNED');
    // Nothing refused reached the sum; a good one does, and an identical resend is ignored while a different one is refused.
    expect(fresh.heldVectors()).toEqual([]);
    fresh.receiveMaskedInput('clinic-00', header, good);
    fresh.receiveMaskedInput('clinic-00', header, good.slice());
    const other = good.slice();
    other[0] = 1;
    expect(thrown(() => fresh.receiveMaskedInput('clinic-00', header, other)).code).toBe('DUPLICATE_CONFLICT');
    // A clinic that sent no shares is not asked for a masked input at all.
    const round = runRound(ctx, 10, { afterKeys: () => ['clinic-00'] }, { stopAfter: 'masked' });
    expect(thrown(() => round.server.receiveMaskedInput('clinic-00', header, good)).code).toBe('NOT_ASSIGNED');
  });

  it('the server never holds an unmasked individual vector: during the round only the masked sum, after it only the result', () => {
    const ctx = baseCtx();
    let during: (MaskWords | Float64Array)[] = [];
    const round = runRound(ctx, 10, { afterShares: (a) => a.slice(0, 2) }, { beforeFinish: (s) => (during = s.heldVectors().map((v) => v.slice())) });
    const { quantised } = round.expected();
    expect(during).toHaveLength(1);
    const held = during[0] as Uint32Array;
    for (const q of quantised) expect(Buffer.from(held.buffer).equals(Buffer.from((q as Uint32Array).buffer))).toBe(false);
    const result = round.finish();
    const after = round.server.heldVectors();
    expect(after).toHaveLength(1);
    expect(after[0]).toBe(result);
    expect(round.inSum.length).toBeGreaterThanOrEqual(2);
    // And late messages are refused: a dropped clinic's masked input after the survivor set is fixed would be unmaskable.
    expect(thrown(() => round.server.receiveMaskedInput('clinic-00', {}, new Uint8Array(0))).code).toBe('STALE');
  });

  it('a wrong unmask share with more than t shares held is reported naming its holder and its dealer, left out, and the sum still commits', () => {
    for (const kind of ['selfMask', 'key'] as const) {
      let target = '';
      let sender = '';
      const round = runRound(baseCtx(), 10, { afterShares: (a) => a.slice(0, 1) }, {
        unmaskMessage: (id, m) => {
          const list = kind === 'selfMask' ? m.selfMaskShares : m.keyShares;
          if (target !== '' || list.length === 0) return m;
          const share = fromBase64(list[0]!.share).slice();
          share[50]! ^= 0x10; // inside y: a well-formed share of the wrong value
          target = list[0]!.of;
          sender = id;
          const changed = [{ of: list[0]!.of, share: toBase64(share) }, ...list.slice(1)];
          return kind === 'selfMask' ? { ...m, selfMaskShares: changed } : { ...m, keyShares: changed };
        },
      });
      expect(target).not.toBe('');
      expectCommits(round);
      expect(round.server.blame).toHaveLength(1);
      expect(round.server.blame[0]).toMatchObject({ sender, owner: target });
      expect(round.server.blame[0]!.message).toContain(`that ${sender} returned disagrees with the other`);
      expect(round.server.blame[0]!.message).toContain(`${sender} (which returned it) or ${target} (which dealt it) is faulty`);
    }
  });

  it('a wrong unmask share among exactly t fails the round naming the owner and the senders', () => {
    const ctx = baseCtx({ k: 4 }); // t = 3
    const graph = resolveRound(ctx, ids(10)).graph;
    const victim = 'clinic-05';
    const [quiet, liar] = graph.get(victim)!;
    const round = runRound(ctx, 10, { afterConsistency: () => [quiet!] }, {
      unmaskMessage: (id, m) => {
        if (id !== liar) return m;
        return { ...m, selfMaskShares: m.selfMaskShares.map((s) => (s.of === victim ? { of: s.of, share: toBase64(flipY(fromBase64(s.share))) } : s)) };
      },
    });
    const err = thrown(() => round.finish());
    expect(err.code).toBe('ATTEMPT_ABORTED');
    const senders = graph.get(victim)!.filter((x) => x !== quiet).sort();
    expect(err.message).toContain(`the self-mask seed rebuilt for ${victim} from the shares of`);
    for (const s of senders) expect(err.message).toContain(s);
    expect(err.message).toContain('does not match its commitment');
  });
});

function flipY(share: Uint8Array): Uint8Array {
  const out = share.slice();
  out[50]! ^= 0x10;
  return out;
}

/** A server in the masked stage of a 10-clinic round where every clinic shared. */
function freshMaskedStage(ctx: RoundContext): SecAggServer {
  const cohort = ids(10);
  const idents = identities(cohort);
  const clients = new Map(cohort.map((id) => [id, new SecAggClient(ctx, id, idents.get(id)!)]));
  const server = new SecAggServer(ctx, cohort);
  for (const [id, c] of clients) server.receiveKeys(id, wire(c.keys()));
  for (const [id, req] of server.sharesRequests()) server.receiveShares(id, wire(clients.get(id)!.shares(wire(req))));
  server.maskedInputRequests();
  return server;
}

function runRoundDroppingInputs(ctx: RoundContext, noInput: string[]): void {
  const cohort = ids(10);
  const idents = identities(cohort);
  const clients = new Map(cohort.map((id) => [id, new SecAggClient(ctx, id, idents.get(id)!)]));
  const server = new SecAggServer(ctx, cohort);
  for (const [id, c] of clients) server.receiveKeys(id, wire(c.keys()));
  for (const [id, req] of server.sharesRequests()) server.receiveShares(id, wire(clients.get(id)!.shares(wire(req))));
  for (const [id, req] of server.maskedInputRequests()) {
    if (noInput.includes(id)) continue;
    const { message, vector } = clients.get(id)!.maskedInput(wire(req), new Float64Array(ctx.vectorLength));
    server.receiveMaskedInput(id, wire(message), vector);
  }
  server.consistencyRequests();
}
