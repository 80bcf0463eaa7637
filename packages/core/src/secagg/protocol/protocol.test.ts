import { describe, expect, it } from 'vitest';
import { FedlhsError } from '../../errors.js';
import { sumWords, type MaskWords } from '../masks.js';
import { dequantizeSum, modulusBits, quantizationParams, quantize } from '../quantize.js';
import { SecAggClient, SecAggServer, fromBase64, toBase64, type MaskedInputRequest, type RoundContext, type UnmaskMessage, type UnmaskRequest } from './index.js';

function thrown(fn: () => unknown): FedlhsError {
  try {
    fn();
  } catch (err) {
    if (err instanceof FedlhsError) return err;
    throw err;
  }
  throw new Error('did not throw');
}

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
  afterMasked?: (alive: string[]) => string[];
}

interface Hooks {
  maskedRequest?: (id: string, req: MaskedInputRequest) => MaskedInputRequest;
  unmaskMessage?: (id: string, m: UnmaskMessage) => UnmaskMessage;
  beforeFinish?: (server: SecAggServer) => void;
}

/** Runs one round in process, every message through JSON; returns what a test checks. */
function runRound(ctx: RoundContext, n: number, drops: Drops = {}, hooks: Hooks = {}, seed = 1) {
  const cohort = ids(n);
  const rand = lcg(seed);
  const inputs = new Map(cohort.map((id) => [id, Float64Array.from({ length: ctx.vectorLength }, () => (2 * rand() - 1) * ctx.clipRange)]));
  const clients = new Map(cohort.map((id) => [id, new SecAggClient(ctx, id)]));
  const server = new SecAggServer(ctx, cohort);
  const traffic = { up: [0, 0, 0, 0], down: [0, 0, 0, 0] };

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
    const m = clients.get(id)!.maskedInput(wire(hooks.maskedRequest ? hooks.maskedRequest(id, req) : req), inputs.get(id)!);
    traffic.up[2]! += bytes(m);
    server.receiveMaskedInput(id, wire(m));
  }
  alive = alive.filter((id) => req3.has(id));
  const inSum = [...alive];
  const gone3 = drops.afterMasked?.(alive) ?? [];
  alive = alive.filter((id) => !gone3.includes(id));

  const req4 = server.unmaskRequests();
  for (const [id, req] of req4) {
    if (!alive.includes(id)) continue;
    traffic.down[3]! += bytes(req);
    const answer = clients.get(id)!.unmask(wire(req));
    const m = hooks.unmaskMessage ? hooks.unmaskMessage(id, answer) : answer;
    traffic.up[3]! += bytes(m);
    server.receiveUnmask(id, wire(m));
  }
  hooks.beforeFinish?.(server);
  const expected = () => {
    const bits = modulusBits(n, ctx.valueBits);
    const spec = { clip: ctx.clipRange, valueBits: ctx.valueBits, clients: n };
    const q = inSum.map((id) => quantize(inputs.get(id)!, spec));
    const float = new Float64Array(ctx.vectorLength);
    for (const id of inSum) inputs.get(id)!.forEach((v, i) => (float[i]! += v));
    return { quantised: q, exact: dequantizeSum(sumWords(q, ctx.vectorLength, bits), inSum.length, spec, bits), float, step: quantizationParams(spec).step };
  };
  return { server, clients, inputs, inSum, responders: alive, req4, traffic, expected, finish: () => server.finish() };
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

  it('n = 10: 30 % dropped after keys, after shares, after masked input — each alone', () => {
    const rand = lcg(7);
    for (const stage of ['afterKeys', 'afterShares', 'afterMasked'] as const) {
      const round = runRound(baseCtx({ graph: 'random-regular' }), 10, { [stage]: thirty(rand) });
      expect(round.inSum.length).toBe(stage === 'afterMasked' ? 10 : 7);
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

  it('too many dropouts after masked input: finish throws naming the survivor', () => {
    const ctx = baseCtx({ k: 4 }); // t = 3 of 4 neighbours
    const probe = runRound(ctx, 10);
    const victim = 'clinic-05';
    const neighbours = probe.req4.get(victim)!.survived;
    const round = runRound(ctx, 10, { afterMasked: () => neighbours.slice(0, 2) });
    const err = thrown(() => round.finish());
    expect(err.code).toBe('ATTEMPT_ABORTED');
    // finish checks survivors in id order: the first with fewer than 3 answering neighbours is named.
    const live = (id: string) => round.req4.get(id)!.survived.filter((x) => round.responders.includes(x)).length;
    const first = [...round.inSum].sort().find((id) => live(id) < 3)!;
    expect(live(victim)).toBe(2);
    expect(err.message).toBe(`secure aggregation: survivor ${first} has ${live(first)} live neighbours, fewer than t = 3: its input cannot be unmasked`);
    // The round is over: nothing is held and nothing more is accepted.
    expect(round.server.heldVectors()).toEqual([]);
  });

  it('a survivor left with too few neighbours after stage 3 fails the round before any share is asked', () => {
    const ctx = baseCtx({ k: 4 });
    const probe = runRound(ctx, 10);
    const victim = 'clinic-03';
    const [a, b] = probe.req4.get(victim)!.survived;
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

  it('the server refuses a masked vector of the wrong length, with an out-of-field word, or not base64', () => {
    const ctx = baseCtx();
    const bits = modulusBits(10, ctx.valueBits); // 20
    const cohort = ids(10);
    const server = new SecAggServer(ctx, cohort);
    const clients = cohort.map((id) => new SecAggClient(ctx, id));
    clients.forEach((c, i) => server.receiveKeys(cohort[i]!, wire(c.keys())));
    const r2 = server.sharesRequests();
    clients.forEach((c, i) => server.receiveShares(cohort[i]!, wire(c.shares(wire(r2.get(cohort[i]!))))));
    server.maskedInputRequests();
    const header = { studyId: ctx.studyId, round: ctx.round, attempt: ctx.attempt };
    const short = toBase64(new Uint8Array(4 * (ctx.vectorLength - 1)));
    expect(thrown(() => server.receiveMaskedInput('clinic-00', { ...header, masked: short })).message).toMatchInlineSnapshot(`"maskedInput.masked: must be 256 bytes (64 values of 4 bytes), got 252"`);
    const words = new Uint32Array(ctx.vectorLength);
    words[9] = 2 ** bits;
    const over = toBase64(new Uint8Array(words.buffer));
    const err = thrown(() => server.receiveMaskedInput('clinic-00', { ...header, masked: over }));
    expect(err.message).toMatchInlineSnapshot(`"maskedInput.masked: value 1048576 at 9 is not below 2^20"`);
    expect(err.details).toEqual({ field: 'maskedInput.masked' });
    expect(thrown(() => server.receiveMaskedInput('clinic-00', { ...header, masked: 'not base64!' })).details).toEqual({ field: 'maskedInput.masked' });
    expect(thrown(() => server.receiveMaskedInput('clinic-00', { ...header, masked: short, extra: 1 })).details).toEqual({ field: 'maskedInput' });
    expect(thrown(() => server.receiveMaskedInput('clinic-00', { ...header, round: 3, masked: short })).code).toBe('STALE');
    expect(thrown(() => server.receiveMaskedInput('intruder', { ...header, masked: short })).code).toBe('NOT_ASSIGNED');
    // Nothing refused reached the sum.
    expect(server.heldVectors()).toEqual([]);
  });

  it('a client refuses an unmask request naming one neighbour both ways, or contradicting an earlier one, or with too few survivors', () => {
    const round = runRound(baseCtx(), 10, { afterMasked: () => [] });
    // Every client answered once; ask clinic-00 again with contradicting lists.
    const client = round.clients.get('clinic-00')!;
    const asked = round.req4.get('clinic-00')!;
    const [first, ...rest] = asked.survived;
    const both: UnmaskRequest = { ...asked, dropped: [first!] };
    let err = thrown(() => client.unmask(wire(both)));
    expect(err.message).toContain(`${first} is named both as survived and as dropped`);
    expect(err.details).toEqual({ field: 'unmaskRequest.dropped[0]' });

    const fresh = runRound(baseCtx(), 10, { afterMasked: () => [] });
    const c2 = fresh.clients.get('clinic-00')!;
    const a2 = fresh.req4.get('clinic-00')!;
    const [f2, ...r2] = a2.survived;
    err = thrown(() => c2.unmask(wire({ ...a2, survived: r2, dropped: [f2!] })));
    expect(err.message).toContain(`${f2} was called survived earlier in this round`);

    // clinic-01 has not answered yet; asked with only 4 of its neighbours as survivors (t = 5).
    const third = runRound(baseCtx(), 10, { afterMasked: () => ['clinic-01'] });
    const c3 = third.clients.get('clinic-01')!;
    const a3 = third.req4.get('clinic-01')!;
    err = thrown(() => c3.unmask(wire({ ...a3, survived: a3.survived.slice(0, 4), dropped: a3.survived.slice(4) })));
    expect(err.message).toContain('4 neighbours survived, fewer than the threshold 5');
    // A neighbour named in neither list is refused too.
    const fourth = runRound(baseCtx(), 10, { afterMasked: () => ['clinic-01'] });
    const a4 = fourth.req4.get('clinic-01')!;
    err = thrown(() => fourth.clients.get('clinic-01')!.unmask(wire({ ...a4, survived: a4.survived.slice(1) })));
    expect(err.message).toContain(`${a4.survived[0]} sent shares but is named neither survived nor dropped`);
    expect(rest.length).toBeGreaterThan(0);
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
    // And late messages are refused: a dropped clinic's masked input after the unmask stage would be unmaskable.
    expect(thrown(() => round.server.receiveMaskedInput('clinic-00', {})).code).toBe('STALE');
  });

  it('a corrupted unmask share fails the round naming the clinic instead of giving a wrong sum', () => {
    for (const kind of ['selfMask', 'key'] as const) {
      let target = '';
      const round = runRound(baseCtx(), 10, { afterShares: (a) => a.slice(0, 1) }, {
        unmaskMessage: (id, m) => {
          const list = kind === 'selfMask' ? m.selfMaskShares : m.keyShares;
          if (target !== '' || list.length === 0) return m;
          const share = fromBase64(list[0]!.share).slice();
          share[50]! ^= 0x10; // inside y: a well-formed share of the wrong value
          target = list[0]!.of;
          const changed = [{ of: list[0]!.of, share: toBase64(share) }, ...list.slice(1)];
          return kind === 'selfMask' ? { ...m, selfMaskShares: changed } : { ...m, keyShares: changed };
        },
      });
      expect(target).not.toBe('');
      const err = thrown(() => round.finish());
      expect(err.code).toBe('ATTEMPT_ABORTED');
      expect(err.message).toContain(target);
    }
  });
});

function runRoundDroppingInputs(ctx: RoundContext, noInput: string[]): void {
  const cohort = ids(10);
  const clients = new Map(cohort.map((id) => [id, new SecAggClient(ctx, id)]));
  const server = new SecAggServer(ctx, cohort);
  for (const [id, c] of clients) server.receiveKeys(id, wire(c.keys()));
  for (const [id, req] of server.sharesRequests()) server.receiveShares(id, wire(clients.get(id)!.shares(wire(req))));
  for (const [id, req] of server.maskedInputRequests()) {
    if (noInput.includes(id)) continue;
    server.receiveMaskedInput(id, wire(clients.get(id)!.maskedInput(wire(req), new Float64Array(ctx.vectorLength))));
  }
  server.unmaskRequests();
}

