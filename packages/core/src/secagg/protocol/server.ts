/**
 * The coordinator's side of one secure-aggregation round: a pure state machine that routes
 * keys and sealed shares, adds masked vectors as they arrive (memory O(model), never one
 * clinic's vector kept), and at the end rebuilds from neighbours' shares the self masks of the
 * clinics in the sum and the mask keys of those that dropped after sharing, to leave only the
 * sum. Each `…Requests()` call closes the previous stage (the caller's deadline): whoever had
 * not answered is dropped, and a late answer is refused STALE — in particular a masked input
 * arriving after the coordinator asked for key shares, which would otherwise let it unmask it.
 */
import { createHash, createPublicKey } from 'node:crypto';
import { FedlhsError } from '../../errors.js';
import { combineShares, decodeShare, type Share } from '../shamir.js';
import { decodeWords, pairSign, pairwiseSeed, privateKeyFromBytes, publicKeyBytes, sumWords, unmaskSum, type MaskWords, type SignedSeed } from '../masks.js';
import { dequantizeSum } from '../quantize.js';
import { checkHeader, commitSelfMask, coordinateOf, headerOf, resolveRound, type ResolvedRound, type RoundContext } from './context.js';
import {
  fromBase64,
  keysMessageSchema,
  maskedInputMessageSchema,
  parseMessage,
  sharesMessageSchema,
  unmaskMessageSchema,
  type MaskedInputRequest,
  type SharesRequest,
  type UnmaskRequest,
} from './wire.js';

/** Options of a server round. */
export interface SecAggServerOptions {
  /** The fewest clinics whose inputs may be summed (default and minimum 2: a sum of one is one input). */
  readonly minSurvivors?: number;
}

type Stage = 'keys' | 'shares' | 'masked' | 'unmask' | 'done' | 'failed';
const ORDER: Stage[] = ['keys', 'shares', 'masked', 'unmask', 'done'];

interface Keys {
  readonly cPublic: string;
  readonly sPublic: string;
}

function aborted(message: string): FedlhsError {
  return new FedlhsError('ATTEMPT_ABORTED', `secure aggregation: ${message}`);
}

const digest = (value: unknown): string => createHash('sha256').update(JSON.stringify(value)).digest('hex');

/** The coordinator in one round. A new one per round attempt. */
export class SecAggServer {
  readonly #round: ResolvedRound;
  readonly #ctx: RoundContext;
  readonly #minSurvivors: number;
  #stage: Stage = 'keys';
  readonly #keys = new Map<string, Keys>();
  /** Stage 2: who was asked for shares, and the neighbours it shares with. */
  readonly #asked2 = new Map<string, string[]>();
  readonly #shares = new Map<string, { readonly to: Map<string, string>; readonly commitment: string; readonly digest: string }>();
  /** Stage 3: who was asked for a masked input, and its neighbours that sent shares. */
  readonly #asked3 = new Map<string, string[]>();
  /** The running sum of masked inputs: the only vector held until `finish`. */
  #maskedSum: MaskWords | undefined;
  readonly #masked = new Map<string, string>();
  /** Stage 4: who was asked to unmask, and what. */
  readonly #asked4 = new Map<string, UnmaskRequest>();
  readonly #selfMaskShares = new Map<string, Share[]>();
  readonly #keyShares = new Map<string, Share[]>();
  readonly #unmasked = new Map<string, string>();
  #result: Float64Array | undefined;
  #included: string[] = [];

  constructor(ctx: RoundContext, cohort: readonly string[], opts: SecAggServerOptions = {}) {
    this.#round = resolveRound(ctx, cohort);
    this.#ctx = ctx;
    const min = opts.minSurvivors ?? 2;
    if (!Number.isInteger(min) || min < 2) throw new FedlhsError('INVALID_ARGUMENT', `minSurvivors: must be an integer ≥ 2, got ${min}`, { details: { field: 'minSurvivors' } });
    this.#minSurvivors = min;
  }

  /** Whoever's inputs `finish` summed (empty before). */
  get included(): readonly string[] {
    return this.#included;
  }

  /**
   * Every vector this server holds now: the running masked sum during the round, the final sum
   * after `finish`. Never an individual input, masked or not, after the next one has arrived.
   * For tests and audits of what the coordinator's memory can contain.
   */
  heldVectors(): (MaskWords | Float64Array)[] {
    return [this.#maskedSum, this.#result].filter((v): v is MaskWords | Float64Array => v !== undefined);
  }

  #close(from: Stage, to: Stage): void {
    if (this.#stage !== from) throw new FedlhsError('INVALID_STATE', `secure aggregation server: cannot go to stage "${to}" from "${this.#stage}"`);
    this.#stage = to;
  }

  /** Checks a client message arrives in its stage from a clinic that was asked. */
  #accept(stage: Stage, id: string, asked: ReadonlyMap<string, unknown> | null, what: string): void {
    if (this.#stage === 'failed') throw new FedlhsError('STALE', `${what} from ${id}: the round failed`);
    if (ORDER.indexOf(this.#stage) > ORDER.indexOf(stage)) throw new FedlhsError('STALE', `${what} from ${id}: the stage closed`);
    if (this.#stage !== stage) throw new FedlhsError('NOT_ASSIGNED', `${what} from ${id}: that stage has not started`);
    const inRound = asked === null ? this.#round.cohort.includes(id) : asked.has(id);
    if (!inRound) throw new FedlhsError('NOT_ASSIGNED', `${what} from ${id}: that clinic was not asked for it this round`);
  }

  /** A resend identical to the first is accepted and ignored; a different one is refused. */
  #duplicate(previous: string | undefined, now: string, id: string, what: string): boolean {
    if (previous === undefined) return false;
    if (previous === now) return true;
    throw new FedlhsError('DUPLICATE_CONFLICT', `${what} from ${id}: a different one was already received`);
  }

  #fail<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      // Whatever stopped a closing stage, the round cannot go on: forget its secrets.
      this.#wipe('failed');
      throw err;
    }
  }

  /**
   * Drops, until none is left, every clinic with fewer than t neighbours among the rest: its
   * secrets could not be rebuilt, so it must not take part (and no one may mask with it).
   */
  #prune(candidates: Iterable<string>, neighboursOf: (id: string) => readonly string[]): Map<string, string[]> {
    const live = new Set(candidates);
    for (let changed = true; changed; ) {
      changed = false;
      for (const id of live) {
        if (neighboursOf(id).filter((n) => live.has(n)).length < this.#round.threshold) {
          live.delete(id);
          changed = true;
        }
      }
    }
    return new Map([...live].sort().map((id) => [id, neighboursOf(id).filter((n) => live.has(n))]));
  }

  /** Stage 1: a clinic's public keys. */
  receiveKeys(id: string, message: unknown): void {
    this.#accept('keys', id, null, 'keys');
    const m = parseMessage(keysMessageSchema, message, 'keys');
    checkHeader(this.#ctx, m, `keys from ${id}`);
    const keys = { cPublic: m.cPublic, sPublic: m.sPublic };
    const prev = this.#keys.get(id);
    if (this.#duplicate(prev && digest(prev), digest(keys), id, 'keys')) return;
    this.#keys.set(id, keys);
  }

  /** Closes stage 1; the shares request of each clinic taking part (neighbours with keys). */
  sharesRequests(): Map<string, SharesRequest> {
    this.#close('keys', 'shares');
    return this.#fail(() => {
      const live = this.#prune(this.#keys.keys(), (id) => this.#round.graph.get(id)!);
      this.#checkCount(live.size, 'sent keys');
      const out = new Map<string, SharesRequest>();
      for (const [id, neighbours] of live) {
        this.#asked2.set(id, neighbours);
        out.set(id, { ...headerOf(this.#ctx), cohort: [...this.#round.cohort], neighbours: neighbours.map((n) => ({ id: n, ...this.#keys.get(n)! })) });
      }
      return out;
    });
  }

  /** Stage 2: a clinic's sealed shares, exactly one per neighbour it was given. */
  receiveShares(id: string, message: unknown): void {
    this.#accept('shares', id, this.#asked2, 'shares');
    const m = parseMessage(sharesMessageSchema, message, 'shares');
    checkHeader(this.#ctx, m, `shares from ${id}`);
    const expected = this.#asked2.get(id)!;
    const to = new Map(m.shares.map((s) => [s.to, s.ciphertext]));
    m.shares.forEach((s, i) => {
      if (!expected.includes(s.to)) throw new FedlhsError('INVALID_ARGUMENT', `shares.shares[${i}].to: ${s.to} is not a neighbour ${id} was given`, { details: { field: `shares.shares[${i}].to` } });
    });
    const missing = expected.filter((n) => !to.has(n));
    if (missing.length > 0) throw new FedlhsError('INVALID_ARGUMENT', `shares.shares: ${id} sent no shares for ${missing.join(', ')}`, { details: { field: 'shares.shares' } });
    const d = digest(m);
    if (this.#duplicate(this.#shares.get(id)?.digest, d, id, 'shares')) return;
    this.#shares.set(id, { to, commitment: m.selfMaskCommitment, digest: d });
  }

  /** Closes stage 2; each clinic that shared gets the shares its surviving neighbours sealed for it. */
  maskedInputRequests(): Map<string, MaskedInputRequest> {
    this.#close('shares', 'masked');
    return this.#fail(() => {
      const live = this.#prune(this.#shares.keys(), (id) => this.#asked2.get(id)!);
      for (const id of [...this.#shares.keys()]) if (!live.has(id)) this.#shares.delete(id);
      this.#checkCount(live.size, 'sent shares');
      const out = new Map<string, MaskedInputRequest>();
      for (const [id, neighbours] of live) {
        this.#asked3.set(id, neighbours);
        out.set(id, { ...headerOf(this.#ctx), survivors: neighbours, ciphertexts: neighbours.map((n) => ({ from: n, ciphertext: this.#shares.get(n)!.to.get(id)! })) });
      }
      return out;
    });
  }

  /**
   * Stage 3: a masked input, refused unless it is exactly vectorLength words each below
   * 2^bits; added to the running sum at once and not kept.
   */
  receiveMaskedInput(id: string, message: unknown): void {
    this.#accept('masked', id, this.#asked3, 'masked input');
    const m = parseMessage(maskedInputMessageSchema, message, 'maskedInput');
    checkHeader(this.#ctx, m, `masked input from ${id}`);
    const words = decodeWords(fromBase64(m.masked), this.#ctx.vectorLength, this.#round.bits, 'maskedInput.masked');
    const d = digest(m.masked);
    if (this.#duplicate(this.#masked.get(id), d, id, 'masked input')) return;
    this.#maskedSum = sumWords(this.#maskedSum === undefined ? [words] : [this.#maskedSum, words], this.#ctx.vectorLength, this.#round.bits);
    this.#masked.set(id, d);
  }

  /** Closes stage 3; asks each clinic in the sum for the shares that remove the masks. */
  unmaskRequests(): Map<string, UnmaskRequest> {
    this.#close('masked', 'unmask');
    return this.#fail(() => {
      const survivors = [...this.#masked.keys()].sort();
      this.#checkCount(survivors.length, 'sent masked inputs');
      // No key share may be asked while some survivor cannot be unmasked: fail before revealing anything.
      for (const id of survivors) {
        const live = this.#asked3.get(id)!.filter((n) => this.#masked.has(n)).length;
        if (live < this.#round.threshold) throw this.#tooFew(id, live);
      }
      for (const d of [...this.#asked3.keys()].filter((id) => !this.#masked.has(id))) {
        const live = this.#asked3.get(d)!.filter((n) => this.#masked.has(n)).length;
        if (live < this.#round.threshold) throw this.#keyTooFew(d, live);
      }
      const out = new Map<string, UnmaskRequest>();
      for (const id of survivors) {
        const neighbours = this.#asked3.get(id)!;
        const req = { ...headerOf(this.#ctx), survived: neighbours.filter((n) => this.#masked.has(n)), dropped: neighbours.filter((n) => !this.#masked.has(n)) };
        this.#asked4.set(id, req);
        out.set(id, req);
      }
      return out;
    });
  }

  /** Stage 4: a clinic's shares, exactly those it was asked for, at its own coordinate. */
  receiveUnmask(id: string, message: unknown): void {
    this.#accept('unmask', id, this.#asked4, 'unmask');
    const m = parseMessage(unmaskMessageSchema, message, 'unmask');
    checkHeader(this.#ctx, m, `unmask from ${id}`);
    const asked = this.#asked4.get(id)!;
    const x = coordinateOf(this.#round, id);
    const read = (list: 'selfMaskShares' | 'keyShares', expected: readonly string[]): [string, Share][] => {
      const got = m[list];
      if (got.length !== expected.length || got.some((s) => !expected.includes(s.of))) {
        throw new FedlhsError('INVALID_ARGUMENT', `unmask.${list}: ${id} must send shares of exactly ${expected.join(', ') || 'none'}`, { details: { field: `unmask.${list}` } });
      }
      return got.map((s, i) => {
        const share = decodeShare(fromBase64(s.share));
        if (share.x !== x) throw new FedlhsError('INVALID_ARGUMENT', `unmask.${list}[${i}].share: coordinate ${share.x} is not ${id}'s (${x})`, { details: { field: `unmask.${list}[${i}].share` } });
        return [s.of, share];
      });
    };
    const selfMask = read('selfMaskShares', asked.survived);
    const key = read('keyShares', asked.dropped);
    if (this.#duplicate(this.#unmasked.get(id), digest(m), id, 'unmask')) return;
    this.#unmasked.set(id, digest(m));
    for (const [of, share] of selfMask) this.#selfMaskShares.set(of, [...(this.#selfMaskShares.get(of) ?? []), share]);
    for (const [of, share] of key) this.#keyShares.set(of, [...(this.#keyShares.get(of) ?? []), share]);
  }

  /**
   * Closes stage 4 and returns the float sum of the survivors' inputs (within
   * |included|·step/2 of the true sum). Throws ATTEMPT_ABORTED naming the clinic when a
   * survivor's self mask or a dropped clinic's key lacks t shares, or a rebuilt secret does
   * not match what its owner committed to.
   */
  finish(): Float64Array {
    this.#close('unmask', 'done');
    return this.#fail(() => {
      const t = this.#round.threshold;
      const survivors = [...this.#masked.keys()].sort();
      const dropped = [...this.#asked3.keys()].filter((id) => !this.#masked.has(id));
      const selfSeeds = survivors.map((u) => {
        const shares = this.#selfMaskShares.get(u) ?? [];
        if (shares.length < t) throw this.#tooFew(u, shares.length);
        const b = this.#rebuild(u, shares, 'self-mask seed');
        if (Buffer.compare(commitSelfMask(this.#ctx, u, b), fromBase64(this.#shares.get(u)!.commitment)) !== 0) throw aborted(`the self-mask seed rebuilt for ${u} does not match its commitment: a share was corrupted`);
        return b;
      });
      const pairwise: SignedSeed[] = [];
      for (const d of dropped) {
        const shares = this.#keyShares.get(d) ?? [];
        if (shares.length < t) throw this.#keyTooFew(d, shares.length);
        const raw = this.#rebuild(d, shares, 'mask key');
        const key = privateKeyFromBytes(raw);
        raw.fill(0);
        if (Buffer.compare(publicKeyBytes(createPublicKey(key)), fromBase64(this.#keys.get(d)!.sPublic)) !== 0) throw aborted(`the mask key rebuilt for ${d} does not match its public key: a share was corrupted`);
        for (const s of this.#asked3.get(d)!.filter((n) => this.#masked.has(n))) {
          pairwise.push({ seed: pairwiseSeed(key, fromBase64(this.#keys.get(s)!.sPublic), { studyId: this.#ctx.studyId, round: this.#ctx.round, a: d, b: s }), sign: pairSign(s, d) });
        }
      }
      const sum = unmaskSum(this.#maskedSum!, { selfSeeds, pairwise }, this.#round.bits);
      for (const seed of [...selfSeeds, ...pairwise.map((p) => p.seed)]) seed.fill(0);
      const result = dequantizeSum(sum, survivors.length, this.#round.spec, this.#round.bits);
      this.#wipe('done');
      this.#result = result;
      this.#included = survivors;
      return result;
    });
  }

  #rebuild(id: string, shares: Share[], what: string): Uint8Array {
    try {
      return combineShares(shares, this.#round.threshold);
    } catch (err) {
      throw new FedlhsError('ATTEMPT_ABORTED', `secure aggregation: the shares of ${id}'s ${what} are inconsistent: ${(err as Error).message}`, { cause: err });
    }
  }

  #tooFew(id: string, live: number): FedlhsError {
    return aborted(`survivor ${id} has ${live} live neighbours, fewer than t = ${this.#round.threshold}: its input cannot be unmasked`);
  }

  #keyTooFew(id: string, live: number): FedlhsError {
    return aborted(`dropped client ${id} has ${live} live neighbours holding its key shares, fewer than t = ${this.#round.threshold}: its masks cannot be removed`);
  }

  #checkCount(n: number, what: string): void {
    if (n < this.#minSurvivors) throw aborted(`${n} clinics ${what}, fewer than the ${this.#minSurvivors} needed`);
  }

  /** Forgets every secret and the masked sum: after the round nothing but the result stays. */
  #wipe(stage: Stage): void {
    this.#stage = stage;
    this.#maskedSum = undefined;
    this.#shares.clear();
    this.#selfMaskShares.clear();
    this.#keyShares.clear();
  }
}
