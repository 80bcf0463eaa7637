/**
 * A clinic's side of one secure-aggregation round (Bonawitz et al. 2017 §4, with the sparse
 * neighbourhoods of Bell et al. 2020): a pure state machine, one method per stage, each taking
 * the coordinator's request as received (unknown JSON, validated here) and returning the
 * message to send back. It refuses — throws, and the clinic answers nothing more this round —
 * whenever the coordinator asks for something an honest coordinator never would: a neighbour
 * outside its graph, too few neighbours to protect its secrets, a tampered share, or the two
 * shares of one neighbour (which together would unmask that neighbour's input).
 */
import { randomBytes } from 'node:crypto';
import { FedlhsError } from '../../errors.js';
import type { RandomBytes } from '../field.js';
import { applyMasks, encodeWords, keyAgreement, pairSign, pairwiseSeed, privateKeyBytes, type KeyAgreementPair, type SignedSeed } from '../masks.js';
import { quantize } from '../quantize.js';
import { SHARE_BYTES, decodeShare, encodeShare, splitSecret, type Share } from '../shamir.js';
import { SEED_BYTES } from '../stream.js';
import { checkContext, checkHeader, commitSelfMask, coordinateOf, headerOf, openShares, resolveRound, sealShares, type ResolvedRound, type RoundContext } from './context.js';
import {
  fromBase64,
  maskedInputRequestSchema,
  parseMessage,
  sharesRequestSchema,
  toBase64,
  unmaskRequestSchema,
  type KeysMessage,
  type MaskedInputMessage,
  type SharesMessage,
  type UnmaskMessage,
} from './wire.js';

type Stage = 'new' | 'keys' | 'shares' | 'masked' | 'unmask' | 'failed';

interface Neighbour {
  readonly cPublic: Uint8Array;
  readonly sPublic: Uint8Array;
}

/** What this clinic holds of a neighbour's secrets after stage 3. */
interface HeldShares {
  readonly selfMask: Share;
  readonly key: Share;
}

function refuse(field: string, message: string): FedlhsError {
  return new FedlhsError('INVALID_ARGUMENT', `${field}: ${message}`, { details: { field } });
}

/** One clinic in one round. Create a new one per round (keys and seeds are never reused). */
export class SecAggClient {
  readonly #ctx: RoundContext;
  readonly #id: string;
  readonly #random: RandomBytes;
  #stage: Stage = 'new';
  #c: KeyAgreementPair | undefined;
  #s: KeyAgreementPair | undefined;
  #round: ResolvedRound | undefined;
  /** The self-mask seed b, drawn in stage 2. */
  #selfMask: Uint8Array | undefined;
  /** Stage-2 neighbours (those that sent keys), with their public keys. */
  readonly #neighbours = new Map<string, Neighbour>();
  /** Stage-3 neighbours (those that sent shares) and their shares for this clinic. */
  readonly #held = new Map<string, HeldShares>();
  /** What this clinic revealed per neighbour in stage 4: never both kinds for one. */
  readonly #revealed = new Map<string, 'selfMask' | 'key'>();

  constructor(ctx: RoundContext, id: string, random: RandomBytes = randomBytes) {
    checkContext(ctx);
    if (typeof id !== 'string' || id.length === 0) throw refuse('id', 'must be a non-empty clinic id');
    this.#ctx = ctx;
    this.#id = id;
    this.#random = random;
  }

  #enter(from: Stage | Stage[], to: Stage): void {
    const allowed = Array.isArray(from) ? from : [from];
    if (!allowed.includes(this.#stage)) throw new FedlhsError('INVALID_STATE', `secure aggregation client ${this.#id}: cannot go to stage "${to}" from "${this.#stage}"`);
    this.#stage = to;
  }

  /** Runs a stage; any refusal ends this clinic's part in the round. */
  #guard<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      this.#stage = 'failed';
      this.#wipe();
      throw err;
    }
  }

  #wipe(): void {
    this.#held.clear();
    this.#selfMask?.fill(0);
  }

  /** Stage 1: two fresh X25519 key pairs, c for sealing shares and s for pairwise masks. */
  keys(): KeysMessage {
    this.#enter('new', 'keys');
    this.#c = keyAgreement();
    this.#s = keyAgreement();
    return { ...headerOf(this.#ctx), cPublic: toBase64(this.#c.publicKey), sPublic: toBase64(this.#s.publicKey) };
  }

  /**
   * Stage 2: draws the self-mask seed b, splits b and the s private key t-of-|neighbours| among
   * the neighbours named, and seals each neighbour's pair of shares for it alone.
   */
  shares(request: unknown): SharesMessage {
    this.#enter('keys', 'shares');
    return this.#guard(() => {
      const msg = parseMessage(sharesRequestSchema, request, 'sharesRequest');
      checkHeader(this.#ctx, msg, 'sharesRequest');
      const round = resolveRound(this.#ctx, msg.cohort);
      if (round.cohort.some((id, i) => msg.cohort[i] !== id)) throw refuse('sharesRequest.cohort', 'must be sorted');
      if (!round.cohort.includes(this.#id)) throw refuse('sharesRequest.cohort', `does not include this clinic (${this.#id})`);
      const mine = round.graph.get(this.#id)!;
      for (const [i, n] of msg.neighbours.entries()) {
        if (!mine.includes(n.id)) throw refuse(`sharesRequest.neighbours[${i}].id`, `${n.id} is not a neighbour of ${this.#id} in the round's graph`);
      }
      // Distinct keys: a coordinator handing out one key (its own) for several neighbours could open their shares.
      const seen = new Set([toBase64(this.#c!.publicKey), toBase64(this.#s!.publicKey)]);
      for (const [i, n] of msg.neighbours.entries()) {
        for (const k of [n.cPublic, n.sPublic]) {
          if (seen.has(k)) throw refuse(`sharesRequest.neighbours[${i}]`, `the key given for ${n.id} is used twice in this round`);
          seen.add(k);
        }
      }
      if (msg.neighbours.length < round.threshold) {
        throw refuse('sharesRequest.neighbours', `${msg.neighbours.length} neighbours cannot hold shares of threshold ${round.threshold}`);
      }
      this.#round = round;
      const b = this.#random(SEED_BYTES);
      if (b.length !== SEED_BYTES) throw refuse('random', `returned ${b.length} bytes, asked for ${SEED_BYTES}`);
      this.#selfMask = Uint8Array.from(b);
      const xs = msg.neighbours.map((n) => coordinateOf(round, n.id));
      const sKey = privateKeyBytes(this.#s!.privateKey);
      const bShares = splitSecret(this.#selfMask, round.threshold, xs, this.#random);
      const sShares = splitSecret(sKey, round.threshold, xs, this.#random);
      sKey.fill(0);
      const shares = msg.neighbours.map((n, i) => {
        const neighbour = { cPublic: fromBase64(n.cPublic), sPublic: fromBase64(n.sPublic) };
        this.#neighbours.set(n.id, neighbour);
        const plain = new Uint8Array(2 * SHARE_BYTES);
        plain.set(encodeShare(bShares[i]!), 0);
        plain.set(encodeShare(sShares[i]!), SHARE_BYTES);
        const sealed = sealShares(this.#ctx, this.#c!.privateKey, neighbour.cPublic, this.#id, n.id, plain, this.#random);
        plain.fill(0);
        return { to: n.id, ciphertext: toBase64(sealed) };
      });
      return { ...headerOf(this.#ctx), shares, selfMaskCommitment: toBase64(commitSelfMask(this.#ctx, this.#id, this.#selfMask)) };
    });
  }

  /**
   * Stage 3: opens the shares of every neighbour that survived stage 2 (refusing the round on
   * a tampered one, naming its sender), then sends its input quantised and masked with b and
   * with the pairwise seed of each of those neighbours.
   */
  maskedInput(request: unknown, input: Float32Array | Float64Array): MaskedInputMessage {
    this.#enter('shares', 'masked');
    return this.#guard(() => {
      const msg = parseMessage(maskedInputRequestSchema, request, 'maskedInputRequest');
      checkHeader(this.#ctx, msg, 'maskedInputRequest');
      const round = this.#round!;
      if (input.length !== this.#ctx.vectorLength) throw refuse('input', `must hold ${this.#ctx.vectorLength} values, got ${input.length}`);
      msg.survivors.forEach((id, i) => {
        if (!this.#neighbours.has(id)) throw refuse(`maskedInputRequest.survivors[${i}]`, `${id} was not a stage-2 neighbour of ${this.#id}`);
      });
      if (msg.survivors.length < round.threshold) {
        throw refuse('maskedInputRequest.survivors', `${msg.survivors.length} neighbours sent shares, fewer than the threshold ${round.threshold}: this clinic's secrets could not be rebuilt`);
      }
      const from = new Map(msg.ciphertexts.map((c, i) => [c.from, { sealed: c.ciphertext, i }]));
      for (const id of msg.survivors) if (!from.has(id)) throw refuse('maskedInputRequest.ciphertexts', `no shares from ${id}, a neighbour named as having sent them`);
      for (const [id, { i }] of from) if (!msg.survivors.includes(id)) throw refuse(`maskedInputRequest.ciphertexts[${i}].from`, `${id} is not among the survivors named`);
      const me = coordinateOf(round, this.#id);
      for (const id of msg.survivors) {
        const { sealed, i } = from.get(id)!;
        const field = `maskedInputRequest.ciphertexts[${i}].ciphertext`;
        const plain = openShares(this.#ctx, this.#c!.privateKey, this.#neighbours.get(id)!.cPublic, id, this.#id, fromBase64(sealed), field);
        const selfMask = decodeShare(plain.subarray(0, SHARE_BYTES));
        const key = decodeShare(plain.subarray(SHARE_BYTES));
        plain.fill(0);
        if (selfMask.x !== me || key.x !== me) throw refuse(field, `the shares from ${id} are not for coordinate ${me}`);
        this.#held.set(id, { selfMask, key });
      }
      const q = quantize(input, round.spec);
      const pairwise: SignedSeed[] = msg.survivors.map((id) => ({
        seed: pairwiseSeed(this.#s!.privateKey, this.#neighbours.get(id)!.sPublic, { studyId: this.#ctx.studyId, round: this.#ctx.round, a: this.#id, b: id }),
        sign: pairSign(this.#id, id),
      }));
      const masked = applyMasks(q, this.#selfMask!, pairwise, round.bits);
      if (q instanceof Uint32Array) q.fill(0);
      else q.fill(0n);
      for (const p of pairwise) p.seed.fill(0);
      return { ...headerOf(this.#ctx), masked: toBase64(encodeWords(masked, round.bits)) };
    });
  }

  /**
   * Stage 4: for each neighbour the coordinator says sent its masked input, the share of its b;
   * for each it says did not, the share of its s key. The two lists must split exactly the
   * neighbours that sent shares, with at least t survivors, and agree with any earlier answer:
   * a neighbour is never revealed both ways.
   */
  unmask(request: unknown): UnmaskMessage {
    this.#enter(['masked', 'unmask'], 'unmask');
    return this.#guard(() => {
      const msg = parseMessage(unmaskRequestSchema, request, 'unmaskRequest');
      checkHeader(this.#ctx, msg, 'unmaskRequest');
      const round = this.#round!;
      const survived = new Set(msg.survived);
      msg.dropped.forEach((id, i) => {
        if (survived.has(id)) throw refuse(`unmaskRequest.dropped[${i}]`, `${id} is named both as survived and as dropped: that would reveal both its secrets`);
      });
      const named = [...msg.survived.map((id) => ['survived', id] as const), ...msg.dropped.map((id) => ['dropped', id] as const)];
      for (const [list, id] of named) {
        if (!this.#held.has(id)) throw refuse(`unmaskRequest.${list}`, `${id} did not send this clinic shares in stage 3`);
        const before = this.#revealed.get(id);
        const now = list === 'survived' ? 'selfMask' : 'key';
        if (before !== undefined && before !== now) throw refuse(`unmaskRequest.${list}`, `${id} was called ${before === 'selfMask' ? 'survived' : 'dropped'} earlier in this round`);
      }
      for (const id of this.#held.keys()) if (!survived.has(id) && !msg.dropped.includes(id)) throw refuse('unmaskRequest', `${id} sent shares but is named neither survived nor dropped`);
      if (msg.survived.length < round.threshold) throw refuse('unmaskRequest.survived', `${msg.survived.length} neighbours survived, fewer than the threshold ${round.threshold}`);
      for (const [list, id] of named) this.#revealed.set(id, list === 'survived' ? 'selfMask' : 'key');
      return {
        ...headerOf(this.#ctx),
        selfMaskShares: msg.survived.map((id) => ({ of: id, share: toBase64(encodeShare(this.#held.get(id)!.selfMask)) })),
        keyShares: msg.dropped.map((id) => ({ of: id, share: toBase64(encodeShare(this.#held.get(id)!.key)) })),
      };
    });
  }
}
