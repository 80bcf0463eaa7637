/**
 * A clinic's side of one secure-aggregation round (Bonawitz et al. 2017 §4, with the sparse
 * neighbourhoods of Bell et al. 2020): a pure state machine, one method per stage, each taking
 * the coordinator's request as received (unknown JSON, validated here) and returning the
 * message to send back. It refuses — throws, and the clinic answers nothing more this round —
 * whenever the coordinator asks for something an honest coordinator never would: a neighbour
 * outside its graph or with keys its identity did not sign (or an identity other than the one
 * pinned), too few neighbours to protect its secrets, a tampered share, a survivor set it has
 * not signed or that too few of its neighbours signed, or the two shares of one neighbour
 * (which together would unmask that neighbour's input).
 */
import { randomBytes, type KeyObject } from 'node:crypto';
import { FedlhsError } from '../../errors.js';
import type { RandomBytes } from '../field.js';
import { applyMasks, keyAgreement, pairSign, pairwiseSeed, privateKeyBytes, type KeyAgreementPair, type SignedSeed } from '../masks.js';
import { quantize } from '../quantize.js';
import { SHARE_BYTES, decodeShare, encodeShare, splitSecret, type Share } from '../shamir.js';
import { SEED_BYTES } from '../stream.js';
import { checkContext, checkHeader, commitSelfMask, coordinateOf, headerOf, openShares, resolveRound, sealShares, type ResolvedRound, type RoundContext } from './context.js';
import { checkIdentity, consistencySigningBytes, ed25519PublicKeyFromRaw, keysSigningBytes, signBytes, verifyBytes, type SecAggIdentity } from './identity.js';
import { packWords } from '../pack.js';
import {
  consistencyRequestSchema,
  fromBase64,
  maskedInputRequestSchema,
  parseMessage,
  sharesRequestSchema,
  toBase64,
  unmaskRequestSchema,
  type ConsistencyMessage,
  type KeysMessage,
  type MaskedInputMessage,
  type SharesMessage,
  type UnmaskMessage,
} from './wire.js';

type Stage = 'new' | 'keys' | 'shares' | 'masked' | 'consistency' | 'unmask' | 'failed';

/** Options of a client round. */
export interface SecAggClientOptions {
  /** Randomness for seeds, shares and nonces (default node:crypto randomBytes). */
  readonly random?: RandomBytes;
  /**
   * The fewest clinics in a survivor set this clinic signs and unmasks within (default and
   * minimum 2). With distributed DP the agent passes clients.min: the noise it counts on is
   * only there if at least that many inputs are summed.
   */
  readonly minSurvivors?: number;
}

/** What the masked-input stage sends: the header (JSON body) and the bit-packed masked vector. */
export interface MaskedInputResult {
  readonly message: MaskedInputMessage;
  readonly vector: Uint8Array;
}

interface Neighbour {
  readonly cPublic: Uint8Array;
  readonly sPublic: Uint8Array;
  /** Its verified, pinned Ed25519 identity key. */
  readonly identity: KeyObject;
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
  readonly #identity: SecAggIdentity;
  readonly #minSurvivors: number;
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
  /** The one survivor set this clinic signed in stage 4, and its answer. */
  #signed: { readonly survivors: readonly string[]; readonly message: ConsistencyMessage } | undefined;

  constructor(ctx: RoundContext, id: string, identity: SecAggIdentity, opts: SecAggClientOptions = {}) {
    checkContext(ctx);
    if (typeof id !== 'string' || id.length === 0) throw refuse('id', 'must be a non-empty clinic id');
    checkIdentity(identity);
    const min = opts.minSurvivors ?? 2;
    if (!Number.isInteger(min) || min < 2) throw refuse('minSurvivors', `must be an integer ≥ 2, got ${min}`);
    this.#ctx = ctx;
    this.#id = id;
    this.#identity = identity;
    this.#random = opts.random ?? randomBytes;
    this.#minSurvivors = min;
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

  /**
   * Stage 1: two fresh X25519 key pairs, c for sealing shares and s for pairwise masks, signed
   * with this clinic's identity key so the coordinator cannot substitute them.
   */
  keys(): KeysMessage {
    this.#enter('new', 'keys');
    this.#c = keyAgreement();
    this.#s = keyAgreement();
    const header = headerOf(this.#ctx);
    const cPublic = toBase64(this.#c.publicKey);
    const sPublic = toBase64(this.#s.publicKey);
    const signature = signBytes(this.#identity.privateKey, keysSigningBytes(header, this.#id, cPublic, sPublic));
    return { ...header, cPublic, sPublic, identityKey: toBase64(this.#identity.publicKey), signature: toBase64(signature) };
  }

  /**
   * Stage 2: draws the self-mask seed b, splits b and the s private key t-of-|neighbours| among
   * the neighbours named, and seals each neighbour's pair of shares for it alone. Each
   * neighbour's keys must carry a valid signature by its identity key, that key must not be this
   * clinic's own and must pass identity.checkPeer (the pin store): else the coordinator could
   * hand out keys of its own and open the shares.
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
      const identities = new Map<string, KeyObject>();
      const ownKey = toBase64(this.#identity.publicKey);
      const identitySeen = new Map<string, string>();
      for (const [i, n] of msg.neighbours.entries()) {
        const field = `sharesRequest.neighbours[${i}]`;
        if (n.identityKey === ownKey) throw refuse(`${field}.identityKey`, `the identity key given for ${n.id} is this clinic's own`);
        const other = identitySeen.get(n.identityKey);
        if (other !== undefined) throw refuse(`${field}.identityKey`, `the identity key given for ${n.id} is also given for ${other}`);
        identitySeen.set(n.identityKey, n.id);
        const raw = fromBase64(n.identityKey);
        const key = ed25519PublicKeyFromRaw(raw, `${field}.identityKey`);
        if (!verifyBytes(key, keysSigningBytes(msg, n.id, n.cPublic, n.sPublic), fromBase64(n.signature))) {
          throw refuse(`${field}.signature`, `the keys given for ${n.id} are not signed by its identity key (substituted keys?)`);
        }
        this.#identity.checkPeer(n.id, raw);
        identities.set(n.id, key);
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
        const neighbour = { cPublic: fromBase64(n.cPublic), sPublic: fromBase64(n.sPublic), identity: identities.get(n.id)! };
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
   * with the pairwise seed of each of those neighbours: the header as the message, the masked
   * words bit-packed at the round's modulus as the vector (pack.ts).
   */
  maskedInput(request: unknown, input: Float32Array | Float64Array): MaskedInputResult {
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
      const vector = packWords(masked, round.bits);
      if (masked instanceof Uint32Array) masked.fill(0);
      else masked.fill(0n);
      return { message: headerOf(this.#ctx), vector };
    });
  }

  /**
   * Stage 4 (Bonawitz's ConsistencyCheck): signs the round-wide set of clinics whose masked
   * input is in the sum, after checking it is one this clinic can stand behind: sorted, within
   * the cohort, containing this clinic, at least minSurvivors clinics, and at least t of the
   * neighbours holding its shares. It signs one set per round: asked again, it returns the same
   * signature for the same set and refuses any other (an equivocating coordinator).
   */
  consistency(request: unknown): ConsistencyMessage {
    const again = this.#signed;
    if (this.#stage === 'consistency' && again !== undefined) {
      return this.#guard(() => {
        const msg = parseMessage(consistencyRequestSchema, request, 'consistencyRequest');
        checkHeader(this.#ctx, msg, 'consistencyRequest');
        if (!sameList(msg.survivors, again.survivors)) throw refuse('consistencyRequest.survivors', 'differs from the survivor set this clinic already signed in this round');
        return again.message;
      });
    }
    this.#enter('masked', 'consistency');
    return this.#guard(() => {
      const msg = parseMessage(consistencyRequestSchema, request, 'consistencyRequest');
      checkHeader(this.#ctx, msg, 'consistencyRequest');
      const round = this.#round!;
      msg.survivors.forEach((id, i) => {
        if (!round.cohort.includes(id)) throw refuse(`consistencyRequest.survivors[${i}]`, `${id} is not in the round's cohort`);
      });
      if (!msg.survivors.includes(this.#id)) throw refuse('consistencyRequest.survivors', `this clinic's masked input is not in the set (${this.#id} is missing)`);
      if (msg.survivors.length < this.#minSurvivors) {
        throw refuse('consistencyRequest.survivors', `${msg.survivors.length} clinics in the sum, fewer than the ${this.#minSurvivors} this clinic requires`);
      }
      const live = msg.survivors.filter((id) => this.#held.has(id)).length;
      if (live < round.threshold) {
        throw refuse('consistencyRequest.survivors', `${live} of this clinic's neighbours holding its shares are in the set, fewer than the threshold ${round.threshold}`);
      }
      const signature = signBytes(this.#identity.privateKey, consistencySigningBytes(msg, msg.survivors, { id: this.#id, cPublic: this.#c!.publicKey, sPublic: this.#s!.publicKey }));
      const message = { ...headerOf(this.#ctx), signature: toBase64(signature) };
      this.#signed = { survivors: [...msg.survivors], message };
      return message;
    });
  }

  /**
   * Stage 5: given the survivor set this clinic signed and at least t of its share-holding
   * neighbours' valid signatures on that same set (its own does not count), reveals for each
   * neighbour that sent it shares the share of its b if that neighbour is in the set, else the
   * share of its s key — never both for one neighbour. Who survived is derived from the signed
   * set, never told: to unmask clinic X, a coordinator needs b_X (t of X's neighbours Y, each in
   * a set with X and Y that t of Y's neighbours signed) and every s_Y (t of Y's neighbours each
   * signing a set without Y). Each clinic signs one set and 2t > k, so for a Y both cannot hold.
   */
  unmask(request: unknown): UnmaskMessage {
    this.#enter(['consistency', 'unmask'], 'unmask');
    return this.#guard(() => {
      const msg = parseMessage(unmaskRequestSchema, request, 'unmaskRequest');
      checkHeader(this.#ctx, msg, 'unmaskRequest');
      const round = this.#round!;
      const signed = this.#signed;
      if (signed === undefined) throw refuse('unmaskRequest', 'this clinic has signed no survivor set in this round');
      if (!sameList(msg.survivors, signed.survivors)) throw refuse('unmaskRequest.survivors', 'is not the survivor set this clinic signed');
      let valid = 0;
      msg.signatures.forEach((s, i) => {
        const field = `unmaskRequest.signatures[${i}]`;
        if (s.id === this.#id) throw refuse(field, "this clinic's own signature does not count");
        const n = this.#neighbours.get(s.id);
        if (n === undefined || !this.#held.has(s.id)) throw refuse(field, `${s.id} is not a neighbour holding this clinic's shares`);
        if (!signed.survivors.includes(s.id)) throw refuse(field, `${s.id} is not in the survivor set, it cannot have signed it`);
        const bytes = consistencySigningBytes(msg, signed.survivors, { id: s.id, cPublic: n.cPublic, sPublic: n.sPublic });
        if (!verifyBytes(n.identity, bytes, fromBase64(s.signature))) throw refuse(field, `the signature of ${s.id} on the survivor set is not valid for this run of the round`);
        valid += 1;
      });
      if (valid < round.threshold) throw refuse('unmaskRequest.signatures', `${valid} neighbour signatures on the survivor set, fewer than the threshold ${round.threshold}`);
      const survived = [...this.#held.keys()].filter((id) => signed.survivors.includes(id)).sort();
      const dropped = [...this.#held.keys()].filter((id) => !signed.survivors.includes(id)).sort();
      // Derived from one signed set, so the two lists cannot overlap; kept as the last line of defence.
      for (const [list, now] of [[survived, 'selfMask'], [dropped, 'key']] as const) {
        for (const id of list) {
          const before = this.#revealed.get(id);
          if (before !== undefined && before !== now) throw refuse('unmaskRequest', `${id} was revealed the other way earlier in this round`);
        }
      }
      for (const id of survived) this.#revealed.set(id, 'selfMask');
      for (const id of dropped) this.#revealed.set(id, 'key');
      return {
        ...headerOf(this.#ctx),
        selfMaskShares: survived.map((id) => ({ of: id, share: toBase64(encodeShare(this.#held.get(id)!.selfMask)) })),
        keyShares: dropped.map((id) => ({ of: id, share: toBase64(encodeShare(this.#held.get(id)!.key)) })),
      };
    });
  }
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}
