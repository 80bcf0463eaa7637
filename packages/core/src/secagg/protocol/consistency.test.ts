/**
 * The signed survivor set (consistency stage) and the signed round keys: review HIGH 1 (a
 * coordinator that lies about who dropped could read one clinic's update) and key substitution.
 */
import { describe, expect, it } from 'vitest';
import { combineShares, decodeShare } from '../shamir.js';
import {
  SecAggClient,
  SecAggServer,
  consistencySigningBytes,
  createSecAggIdentity,
  fromBase64,
  keysSigningBytes,
  memoryPins,
  resolveRound,
  signBytes,
  toBase64,
  type ConsistencyMessage,
  type MaskedInputResult,
  type RoundContext,
  type SecAggIdentity,
  type SharesRequest,
  type UnmaskMessage,
} from './index.js';
import { thrown } from '../test-support.js';


const wire = <T>(m: T): unknown => JSON.parse(JSON.stringify(m));
const ids = (n: number): string[] => Array.from({ length: n }, (_, i) => `clinic-${String(i).padStart(2, '0')}`);
const header = (ctx: RoundContext) => ({ studyId: ctx.studyId, round: ctx.round, attempt: ctx.attempt });

function baseCtx(over: Partial<RoundContext> = {}): RoundContext {
  return { studyId: 'study-a', round: 3, attempt: 0, k: 4, graph: 'ring', valueBits: 16, clipRange: 1, vectorLength: 8, ...over };
}

/** A small deterministic generator for test choices. */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/**
 * Every clinic through keys, shares and masked input with an honest SecAggServer; what the
 * masked inputs were is returned and the server holds all of them (unless `feed` is false).
 */
function toMasked(ctx: RoundContext, n: number, opts: { minSurvivors?: number; pins?: Map<string, Map<string, Uint8Array>>; feed?: boolean; idents?: Map<string, SecAggIdentity> } = {}) {
  const cohort = ids(n);
  const pins = opts.pins ?? new Map<string, Map<string, Uint8Array>>();
  const idents =
    opts.idents ??
    new Map(
      cohort.map((id) => {
        const mine = pins.get(id) ?? new Map<string, Uint8Array>();
        pins.set(id, mine);
        return [id, createSecAggIdentity({ checkPeer: memoryPins(mine) })];
      }),
    );
  const clients = new Map(cohort.map((id) => [id, new SecAggClient(ctx, id, idents.get(id)!, { minSurvivors: opts.minSurvivors })]));
  const server = new SecAggServer(ctx, cohort);
  for (const [id, c] of clients) server.receiveKeys(id, wire(c.keys()));
  const req2 = server.sharesRequests();
  for (const [id, req] of req2) server.receiveShares(id, wire(clients.get(id)!.shares(wire(req))));
  const masked = new Map<string, MaskedInputResult>();
  for (const [id, req] of server.maskedInputRequests()) {
    const m = clients.get(id)!.maskedInput(wire(req), Float64Array.from({ length: ctx.vectorLength }, (_, i) => Math.sin(i + id.length)));
    masked.set(id, m);
    if (opts.feed !== false) server.receiveMaskedInput(id, wire(m.message), m.vector);
  }
  return { cohort, clients, server, idents, pins, req2, masked, round: resolveRound(ctx, cohort) };
}

/** The round keys `id` sent in stage 1, as the server handed them to its neighbours in stage 2. */
function keysOf(r: ReturnType<typeof toMasked>, id: string): { id: string; cPublic: string; sPublic: string } {
  for (const req of r.req2.values()) {
    const n = req.neighbours.find((x) => x.id === id);
    if (n !== undefined) return { id, cPublic: n.cPublic, sPublic: n.sPublic };
  }
  throw new Error(`no keys of ${id} in stage 2`);
}

/**
 * A malicious coordinator in the consistency and unmask stages: tells each clinic the set
 * `setFor(id)`, collects every signature, and hands each signer all its neighbours' signatures
 * on its own set (the most it can do). Returns who refused and what was revealed.
 */
function lyingCoordinator(ctx: RoundContext, r: ReturnType<typeof toMasked>, setFor: (id: string) => string[]) {
  const signed = new Map<string, { set: string[]; message: ConsistencyMessage }>();
  const refused = new Map<string, string>();
  for (const id of r.cohort) {
    const set = setFor(id);
    try {
      signed.set(id, { set, message: r.clients.get(id)!.consistency(wire({ ...header(ctx), survivors: set })) });
    } catch (err) {
      refused.set(id, (err as Error).message);
    }
  }
  const answers = new Map<string, UnmaskMessage>();
  for (const [id, { set }] of signed) {
    const signatures = r.round.graph
      .get(id)!
      .filter((n) => signed.get(n)?.set.join() === set.join())
      .map((n) => ({ id: n, signature: signed.get(n)!.message.signature }));
    try {
      answers.set(id, r.clients.get(id)!.unmask(wire({ ...header(ctx), survivors: set, signatures })));
    } catch (err) {
      refused.set(id, (err as Error).message);
    }
  }
  const sharesOf = (kind: 'selfMaskShares' | 'keyShares', of: string) =>
    [...answers.entries()].flatMap(([from, a]) => a[kind].filter((s) => s.of === of).map((s) => ({ from, share: decodeShare(fromBase64(s.share)) })));
  return { refused, answers, sharesOf };
}

describe('secure aggregation: the signed survivor set (review HIGH 1)', () => {
  for (const [n, k] of [
    [50, 6],
    [30, 4],
  ] as const) {
    it(`the review's attack fails (n = ${n}, k = ${k}, random-regular): X's neighbours never reveal b_X when called dropped`, () => {
      const ctx = baseCtx({ k, graph: 'random-regular' });
      const r = toMasked(ctx, n, { feed: false });
      const t = r.round.threshold;
      const X = r.cohort[0]!;
      const NX = r.round.graph.get(X)!;
      // The lie: every neighbour of X dropped after its masked input, X survived.
      const lie = r.cohort.filter((id) => !NX.includes(id));
      const { refused, sharesOf } = lyingCoordinator(ctx, r, () => lie);
      for (const Y of NX) expect(refused.get(Y)).toContain(`this clinic's masked input is not in the set (${Y} is missing)`);
      const bX = sharesOf('selfMaskShares', X);
      expect(bX.length).toBeLessThan(t);
      expect(() => combineShares(bX.map((s) => s.share), t)).toThrow();
      // The keys of the neighbours do come out (that is what a real dropout needs), but without b_X they mask nothing of X.
      expect(NX.some((Y) => sharesOf('keyShares', Y).length >= t)).toBe(true);
    });
  }

  it('an equivocating coordinator (a set with X and N(X) to some, one without N(X) to others) never gets b_X and a neighbour key both', () => {
    const ctx = baseCtx({ k: 6, graph: 'random-regular' });
    const r = toMasked(ctx, 30, { feed: false });
    const t = r.round.threshold;
    const X = r.cohort[0]!;
    const NX = r.round.graph.get(X)!;
    const all = [...r.cohort];
    const without = r.cohort.filter((id) => !NX.includes(id));
    const rand = lcg(5);
    const partitions: ((id: string) => string[])[] = [
      // The natural split: X and its neighbours see everyone, the rest see N(X) gone.
      (id) => (id === X || NX.includes(id) ? all : without),
      // X, its neighbours and theirs see everyone.
      (id) => (id === X || NX.includes(id) || NX.some((y) => r.round.graph.get(y)!.includes(id)) ? all : without),
    ];
    for (let i = 0; i < 10; i++) {
      const side = new Map(r.cohort.map((id) => [id, rand() < 0.5]));
      partitions.push((id) => (side.get(id)! ? all : without));
    }
    let revealedSomething = 0;
    for (const setFor of partitions) {
      const fresh = toMasked(ctx, 30, { feed: false, idents: r.idents });
      const { sharesOf } = lyingCoordinator(ctx, fresh, setFor);
      const bX = sharesOf('selfMaskShares', X);
      for (const Y of NX) {
        const sY = sharesOf('keyShares', Y);
        // Y's share of b_X and t shares of Y's key never both come out: each clinic signs one set and 2t > k.
        expect(bX.some((s) => s.from === Y) && sY.length >= t).toBe(false);
        if (bX.length > 0 || sY.length > 0) revealedSomething++;
      }
      expect(bX.length >= t && NX.every((Y) => sharesOf('keyShares', Y).length >= t)).toBe(false);
    }
    // The partitions did make clinics answer: the property is not vacuous.
    expect(revealedSomething).toBeGreaterThan(0);
  });
});

describe('secure aggregation: consistency refusals', () => {
  const ctx = baseCtx({ k: 4 }); // ring, t = 3

  it('a client signs only a set that contains it, is sorted and in the cohort, and one set per round', () => {
    const r = toMasked(ctx, 10);
    const c = (id: string) => r.clients.get(id)!;
    const all = [...r.cohort];
    expect(thrown(() => c('clinic-00').consistency(wire({ ...header(ctx), survivors: all.slice(1) }))).message).toBe(
      "consistencyRequest.survivors: this clinic's masked input is not in the set (clinic-00 is missing)",
    );
    expect(thrown(() => c('clinic-01').consistency(wire({ ...header(ctx), survivors: [...all].reverse() }))).details).toEqual({ field: 'consistencyRequest.survivors[1]' });
    expect(thrown(() => c('clinic-02').consistency(wire({ ...header(ctx), survivors: [...all, 'zz-stranger'] }))).message).toContain('zz-stranger is not in the round');
    const first = c('clinic-03').consistency(wire({ ...header(ctx), survivors: all }));
    expect(c('clinic-03').consistency(wire({ ...header(ctx), survivors: all }))).toEqual(first);
    expect(thrown(() => c('clinic-03').consistency(wire({ ...header(ctx), survivors: all.filter((id) => id !== 'clinic-09') }))).message).toContain(
      'differs from the survivor set this clinic already signed',
    );
    // A refusal ends the clinic's part in the round.
    expect(thrown(() => c('clinic-03').unmask(wire({ ...header(ctx), survivors: all, signatures: [] }))).code).toBe('INVALID_STATE');
    expect(thrown(() => c('clinic-04').consistency(wire({ ...header(ctx), round: 9, survivors: all }))).code).toBe('STALE');
  });

  it('a client refuses a set smaller than its minSurvivors, or with fewer than t of its share-holding neighbours', () => {
    const r = toMasked(ctx, 10, { minSurvivors: 11 });
    expect(thrown(() => r.clients.get('clinic-00')!.consistency(wire({ ...header(ctx), survivors: r.cohort }))).message).toBe(
      'consistencyRequest.survivors: 10 clinics in the sum, fewer than the 11 this clinic requires',
    );
    const r2 = toMasked(ctx, 10);
    const mine = r2.round.graph.get('clinic-05')!;
    const set = r2.cohort.filter((id) => !mine.slice(0, 2).includes(id));
    expect(thrown(() => r2.clients.get('clinic-05')!.consistency(wire({ ...header(ctx), survivors: set }))).message).toContain(
      "2 of this clinic's neighbours holding its shares are in the set, fewer than the threshold 3",
    );
    expect(() => new SecAggClient(ctx, 'x', createSecAggIdentity(), { minSurvivors: 1 })).toThrow(/minSurvivors/);
  });

  it('a client unmasks only the set it signed, with ≥ t valid signatures of its neighbours on it', () => {
    const r = toMasked(ctx, 10);
    const cons = r.server.consistencyRequests();
    for (const [id, req] of cons) r.server.receiveConsistency(id, wire(r.clients.get(id)!.consistency(wire(req))));
    const req5 = r.server.unmaskRequests();
    const asked = req5.get('clinic-04')!;
    expect(asked.signatures).toHaveLength(4);
    const fresh = () => {
      const x = toMasked(ctx, 10);
      const c = x.server.consistencyRequests();
      for (const [id, req] of c) x.server.receiveConsistency(id, wire(x.clients.get(id)!.consistency(wire(req))));
      return { x, req: x.server.unmaskRequests().get('clinic-04')! };
    };
    let f = fresh();
    expect(thrown(() => f.x.clients.get('clinic-04')!.unmask(wire({ ...f.req, survivors: f.req.survivors.slice(1) }))).message).toBe('unmaskRequest.survivors: is not the survivor set this clinic signed');
    f = fresh();
    const signer = f.req.signatures[1]!.id;
    const forged = f.req.signatures.map((s, i) => (i === 1 ? { id: s.id, signature: f.req.signatures[0]!.signature } : s));
    let err = thrown(() => f.x.clients.get('clinic-04')!.unmask(wire({ ...f.req, signatures: forged })));
    expect(err.message).toBe(`unmaskRequest.signatures[1]: the signature of ${signer} on the survivor set is not valid for this run of the round`);
    f = fresh();
    err = thrown(() => f.x.clients.get('clinic-04')!.unmask(wire({ ...f.req, signatures: f.req.signatures.slice(0, 2) })));
    expect(err.message).toBe('unmaskRequest.signatures: 2 neighbour signatures on the survivor set, fewer than the threshold 3');
    f = fresh();
    const outsider = f.x.cohort.find((id) => id !== 'clinic-04' && !f.x.round.graph.get('clinic-04')!.includes(id))!;
    err = thrown(() => f.x.clients.get('clinic-04')!.unmask(wire({ ...f.req, signatures: [...f.req.signatures, { id: outsider, signature: f.req.signatures[0]!.signature }] })));
    expect(err.message).toContain(`${outsider} is not a neighbour holding this clinic's shares`);
    // A signature on another set (a coordinator replaying one set's signatures for another) is invalid.
    f = fresh();
    const otherSet = f.x.cohort.filter((id) => id !== 'clinic-09');
    const onOther = f.req.signatures.map((s) => ({ id: s.id, signature: toBase64(signBytes(f.x.idents.get(s.id)!.privateKey, consistencySigningBytes(header(ctx), otherSet, keysOf(f.x, s.id)))) }));
    expect(thrown(() => f.x.clients.get('clinic-04')!.unmask(wire({ ...f.req, signatures: onOther }))).message).toContain('on the survivor set is not valid');
    // And the honest request is answered: the shares of its 4 neighbours' self masks (all survived).
    f = fresh();
    const answer = f.x.clients.get('clinic-04')!.unmask(wire(f.req));
    expect(answer.selfMaskShares).toHaveLength(4);
    expect(answer.keyShares).toHaveLength(0);
  });

  it('refuses signatures replayed from another run of the same round (same header, other round keys: review secagg2 HIGH 1)', () => {
    // Run 1: everyone signs the full cohort; the coordinator keeps the signatures.
    const pins = new Map<string, Map<string, Uint8Array>>();
    const run1 = toMasked(ctx, 10, { pins });
    const sigs1 = new Map<string, string>();
    for (const [id, req] of run1.server.consistencyRequests()) sigs1.set(id, run1.clients.get(id)!.consistency(wire(req)).signature);
    // Run 2 under the same header, same clinics and identities (pins carried over): fresh round keys.
    const run2 = toMasked(ctx, 10, { pins, idents: run1.idents });
    const x = 'clinic-04';
    const set = run2.cohort;
    run2.clients.get(x)!.consistency(wire({ ...header(ctx), survivors: set }));
    const replayed = run2.round.graph.get(x)!.map((n) => ({ id: n, signature: sigs1.get(n)! }));
    const err = thrown(() => run2.clients.get(x)!.unmask(wire({ ...header(ctx), survivors: set, signatures: replayed })));
    expect(err.message).toMatch(/^unmaskRequest\.signatures\[0\]: the signature of clinic-\d+ on the survivor set is not valid for this run of the round$/);
    // The same neighbours' signatures from this run are accepted (the test can tell the two apart).
    const run2x = toMasked(ctx, 10, { pins, idents: run1.idents });
    const sigs2 = new Map<string, string>();
    for (const id of run2x.round.graph.get(x)!) sigs2.set(id, run2x.clients.get(id)!.consistency(wire({ ...header(ctx), survivors: set })).signature);
    run2x.clients.get(x)!.consistency(wire({ ...header(ctx), survivors: set }));
    const fresh = run2x.round.graph.get(x)!.map((n) => ({ id: n, signature: sigs2.get(n)! }));
    expect(run2x.clients.get(x)!.unmask(wire({ ...header(ctx), survivors: set, signatures: fresh })).selfMaskShares).toHaveLength(4);
  });

  it('a client refuses to unmask before it signed a set', () => {
    const r = toMasked(ctx, 10);
    expect(thrown(() => r.clients.get('clinic-00')!.unmask(wire({ ...header(ctx), survivors: r.cohort, signatures: [] }))).code).toBe('INVALID_STATE');
  });

  it('the server refuses a consistency signature that is not on the survivor set, naming the clinic', () => {
    const r = toMasked(ctx, 10);
    const cons = r.server.consistencyRequests();
    const other = r.cohort.filter((id) => id !== 'clinic-09');
    const bad = { ...header(ctx), signature: toBase64(signBytes(r.idents.get('clinic-01')!.privateKey, consistencySigningBytes(header(ctx), other, keysOf(r, 'clinic-01')))) };
    const err = thrown(() => r.server.receiveConsistency('clinic-01', wire(bad)));
    expect(err.message).toBe('consistency.signature: the signature of clinic-01 on the survivor set is not valid');
    r.server.receiveConsistency('clinic-01', wire(r.clients.get('clinic-01')!.consistency(wire(cons.get('clinic-01')!))));
    expect(thrown(() => r.server.receiveConsistency('clinic-01', wire(bad))).code).toBe('INVALID_ARGUMENT');
  });
});

describe('secure aggregation: signed keys and pinned identities', () => {
  const ctx = baseCtx({ k: 4 });

  /** Clients through stage 1 and the shares requests an honest coordinator would send. */
  function toShares(pins = new Map<string, Map<string, Uint8Array>>(), attempt = 0) {
    const c = { ...ctx, attempt };
    const cohort = ids(6);
    const idents = new Map(
      cohort.map((id) => {
        const mine = pins.get(id) ?? new Map<string, Uint8Array>();
        pins.set(id, mine);
        return [id, createSecAggIdentity({ checkPeer: memoryPins(mine) })];
      }),
    );
    return { c, cohort, idents, pins };
  }

  function sharesRequests(c: RoundContext, cohort: string[], idents: Map<string, SecAggIdentity>) {
    const clients = new Map(cohort.map((id) => [id, new SecAggClient(c, id, idents.get(id)!)]));
    const server = new SecAggServer(c, cohort);
    for (const [id, cl] of clients) server.receiveKeys(id, wire(cl.keys()));
    return { clients, requests: server.sharesRequests() };
  }

  const coordinator = createSecAggIdentity();
  /** The coordinator's substitute for neighbour 0: its own round keys, optionally signed with its own identity. */
  function substitute(c: RoundContext, req: SharesRequest, signIt: boolean): SharesRequest {
    const victim = req.neighbours[0]!;
    const cPublic = toBase64(new Uint8Array(32).fill(1));
    const sPublic = toBase64(new Uint8Array(32).fill(2));
    const replaced = signIt
      ? { id: victim.id, cPublic, sPublic, identityKey: toBase64(coordinator.publicKey), signature: toBase64(signBytes(coordinator.privateKey, keysSigningBytes(c, victim.id, cPublic, sPublic))) }
      : { ...victim, cPublic, sPublic };
    return { ...req, neighbours: [replaced, ...req.neighbours.slice(1)] };
  }

  it('a neighbour key replaced by the coordinator is refused by its signature', () => {
    const s = toShares();
    const { clients, requests } = sharesRequests(s.c, s.cohort, s.idents);
    const req = requests.get('clinic-00')!;
    const err = thrown(() => clients.get('clinic-00')!.shares(wire(substitute(s.c, req, false))));
    expect(err.message).toBe(`sharesRequest.neighbours[0].signature: the keys given for ${req.neighbours[0]!.id} are not signed by its identity key (substituted keys?)`);
  });

  it('a re-signed substitute (the coordinator’s own identity) is refused by the pin of the real identity', () => {
    const pins = new Map<string, Map<string, Uint8Array>>();
    const first = toShares(pins, 0);
    const one = sharesRequests(first.c, first.cohort, first.idents);
    for (const [id, req] of one.requests) one.clients.get(id)!.shares(wire(req)); // round 1, honest: pins everyone's neighbours
    const victim = one.requests.get('clinic-00')!.neighbours[0]!.id;
    expect(pins.get('clinic-00')!.get(victim)).toEqual(first.idents.get(victim)!.publicKey);
    const second = { ...first, c: { ...ctx, attempt: 1 } };
    const two = sharesRequests(second.c, second.cohort, first.idents);
    expect(two.requests.get('clinic-00')!.neighbours[0]!.id).toBe(victim); // the ring: the same neighbours in both attempts
    const err = thrown(() => two.clients.get('clinic-00')!.shares(wire(substitute(second.c, two.requests.get('clinic-00')!, true))));
    expect(err.message).toBe(`identityKey of ${victim}: differs from the key pinned for that peer (refusing: the coordinator may be substituting keys)`);
  });

  it("a neighbour given this clinic's own identity key, or one identity for two neighbours, is refused", () => {
    const s = toShares();
    const { clients, requests } = sharesRequests(s.c, s.cohort, s.idents);
    const req = requests.get('clinic-00')!;
    const mine = toBase64(s.idents.get('clinic-00')!.publicKey);
    let err = thrown(() => clients.get('clinic-00')!.shares(wire({ ...req, neighbours: req.neighbours.map((n, i) => (i === 0 ? { ...n, identityKey: mine } : n)) })));
    expect(err.message).toContain("is this clinic's own");
    const s2 = toShares();
    const x = sharesRequests(s2.c, s2.cohort, s2.idents);
    const r2 = x.requests.get('clinic-00')!;
    err = thrown(() => x.clients.get('clinic-00')!.shares(wire({ ...r2, neighbours: r2.neighbours.map((n, i) => (i === 1 ? { ...n, identityKey: r2.neighbours[0]!.identityKey } : n)) })));
    expect(err.message).toContain(`is also given for ${r2.neighbours[0]!.id}`);
  });

  it('the server refuses keys whose signature does not verify, naming the clinic', () => {
    const s = toShares();
    const client = new SecAggClient(s.c, 'clinic-00', s.idents.get('clinic-00')!);
    const server = new SecAggServer(s.c, s.cohort);
    const keys = client.keys();
    // Signed for another clinic id: a coordinator-side mix-up or a replay.
    const err = thrown(() => server.receiveKeys('clinic-01', wire(keys)));
    expect(err.message).toBe('keys.signature: the keys of clinic-01 are not signed by the identity key sent with them');
    expect(err.details).toEqual({ field: 'keys.signature' });
    expect(thrown(() => server.receiveKeys('clinic-00', wire({ ...keys, identityKey: toBase64(new Uint8Array(32)) }))).code).toBe('INVALID_ARGUMENT');
    server.receiveKeys('clinic-00', wire(keys));
  });

  it('an identity whose public key does not match its private key is refused', () => {
    const a = createSecAggIdentity();
    const b = createSecAggIdentity();
    expect(() => new SecAggClient(ctx, 'c', { ...a, publicKey: b.publicKey })).toThrow(/identity.publicKey/);
  });
});
