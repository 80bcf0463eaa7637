import { createHash } from 'node:crypto';
import type { SecAggClient } from '@fedlhs/core';
import type { StageReceipt__Output, Task__Output } from '@fedlhs/proto';
import { authMetadata, deadlineIn, isServiceError } from '../connection.js';
import { stageBody } from '../failpoints.js';
import { identityFingerprint } from '../identity-key.js';
import type { TaskContext, TaskHandler } from '../task-runner.js';
import { SecAggSessions, type SentAnswer } from './secagg-sessions.js';
import { budgetDecision, trainRound } from './train-round.js';

/*
 * The clinic's side of secure aggregation (proto "Secure aggregation"): five stage tasks, each
 * answered through ReportStage with the JSON the round's SecAggClient (core secagg/protocol)
 * returns, and for the masked input the packed vector (StageReport.vector). What leaves: two
 * public keys signed with the clinic's identity key, shares sealed for the clinic's neighbours,
 * the update masked, a signature on the round's survivor set, and neighbours' shares the
 * coordinator needs to remove the masks of the sum. Every answer is audited (secagg_stage_sent)
 * with its size and digest before it is sent.
 */

/** The stages, as named in logs and the audit log. */
export type SecAggStage = 'keys' | 'shares' | 'masked_input' | 'consistency' | 'unmask';

/** A request the protocol client (or the payload's decoding) refused: the task FAILS with `reason`. */
class Refused extends Error {}

/** Runs a protocol step; whatever it throws is a refusal of the coordinator's request. */
function refusing<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw new Refused((err as Error).message, { cause: err });
  }
}

/** Task.payload as the stage's request (UTF-8 JSON), or a refusal naming what is wrong. */
export function parsePayload(task: Task__Output): unknown {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(task.payload);
  } catch {
    throw new Refused('Task.payload: not UTF-8');
  }
  if (text.length === 0) throw new Refused('Task.payload: empty, the stage request is missing');
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new Refused(`Task.payload: not JSON (${(err as Error).message})`);
  }
}

/** Δ clipped to ±clipRange per value (the protocol's quantisation range), counting the values clipped. */
export function clipToRange(delta: Float32Array, clipRange: number): { values: Float64Array; clipped: number } {
  const values = new Float64Array(delta.length);
  let clipped = 0;
  for (let i = 0; i < delta.length; i++) {
    const v = delta[i]!;
    if (!Number.isFinite(v)) throw new Error(`the model change has a value that is not finite at index ${i} (${v}): training diverged; nothing sent`);
    if (v > clipRange || v < -clipRange) clipped++;
    values[i] = Math.min(clipRange, Math.max(-clipRange, v));
  }
  return { values, clipped };
}

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const EMPTY = Buffer.alloc(0);

/** What an answer is, for the audit line: its words and the fields that describe it (never a secret). */
interface Described {
  message: object;
  /** The masked input's packed words (StageReport.vector); absent for every other stage. */
  vector?: Uint8Array;
  detail: string;
  summary: Record<string, unknown>;
}

/**
 * Audits the answer (one line, before it leaves: body and vector sizes and digests, never the
 * vector) and sends it with ReportStage, retried on transient codes.
 */
async function report(task: Task__Output, ctx: TaskContext, stage: SecAggStage, answer: SentAnswer, what: { detail: string; summary: Record<string, unknown> }): Promise<void> {
  // Test fault injection only (failpoints.ts): unchanged unless a failpoint is armed for this stage.
  const body = stageBody(stage, answer.body);
  const { vector } = answer;
  const digest = sha256(body);
  const withVector = vector.length === 0 ? {} : { vectorBytes: vector.length, vectorSha256: sha256(vector) };
  ctx.state.audit({
    event: 'secagg_stage_sent', coordinator: ctx.config.coordinator.address, studyId: task.studyId, round: task.round, taskId: task.taskId,
    bytes: body.length + vector.length, sha256: digest, outcome: 'sending', detail: what.detail,
    sent: { stageReport: { taskId: task.taskId, studyId: task.studyId, round: task.round, stage, attempt: task.attempt, bodyBytes: body.length, bodySha256: digest, ...withVector, ...what.summary } },
  });
  const request = { taskId: task.taskId, studyId: task.studyId, round: task.round, body, vector };
  const receipt = await ctx.withRetry('report', () =>
    new Promise<StageReceipt__Output>((resolve, reject) => {
      ctx.clients.federation.ReportStage(request, authMetadata(ctx.credential.credential), { deadline: deadlineIn(30_000) }, (err, r) => (err === null && r !== undefined ? resolve(r) : reject(err)));
    }),
  );
  const bytes = body.length + vector.length;
  ctx.log.info({ event: 'secagg.stage_sent', stage, attempt: task.attempt, bytes, sha256: digest, duplicate: receipt.duplicate }, `round ${task.round}: secure-aggregation ${stage} answer accepted (${bytes} bytes)`);
}

/** One stage: its task kind and how it answers the request with the round's client. */
interface StageSpec {
  kind: Task__Output['kind'];
  stage: SecAggStage;
  /** The answer, or undefined when there is nothing to send (declined, cancelled). */
  answer(task: Task__Output, ctx: TaskContext, client: SecAggClient): Promise<Described | undefined>;
}

function handler(sessions: SecAggSessions, spec: StageSpec): TaskHandler {
  const { stage } = spec;
  const refuse = (task: Task__Output, ctx: TaskContext, reason: string): void => {
    // The clinic answers nothing more in this round: its secrets go with the client.
    sessions.discard(task);
    ctx.log.warn({ event: 'secagg.refused', stage, attempt: task.attempt, reason }, `round ${task.round}: secure-aggregation ${stage} refused: ${reason}`);
    const why = `secure aggregation ${stage}: ${reason}`;
    if (ctx.fail === undefined) throw new Error(why);
    ctx.fail(why);
  };
  return {
    kind: spec.kind,
    name: `secagg_${stage}`,
    sentEvent: 'secagg_stage_sent',
    async run(task, ctx) {
      if (ctx.manifest.privacy?.secureAggregation === undefined) {
        refuse(task, ctx, 'the study\'s manifest has no privacy.secureAggregation');
        return;
      }
      const again = sessions.answered(task);
      if (again !== undefined) {
        // Re-sent after a transient failure: the same answer (the protocol never answers one stage twice differently).
        await report(task, ctx, stage, again, { detail: `the ${stage} answer sent before for this task, again`, summary: { resent: true } });
        return;
      }
      let client: SecAggClient | undefined;
      try {
        if (stage === 'keys') {
          // Take part in the round only if its privacy cost would fit (charged at the masked input).
          if (budgetDecision(task, ctx) === undefined) return;
          client = await sessions.start(task, ctx);
        } else {
          client = sessions.get(task);
          if (client === undefined) {
            refuse(task, ctx, `no keys for round ${task.round} attempt ${task.attempt} in this process (never received, refused, or lost with a restart or the control session): this clinic has dropped from the round`);
            return;
          }
        }
        const described = await spec.answer(task, ctx, client);
        if (described === undefined) {
          sessions.discard(task);
          return;
        }
        if (sessions.get(task) !== client) {
          ctx.log.warn({ event: 'secagg.rounds_dropped', stage, attempt: task.attempt }, `round ${task.round}: the round was dropped while the ${stage} answer was prepared (control session lost); nothing sent`);
          return;
        }
        const answer = { body: Buffer.from(JSON.stringify(described.message), 'utf8'), vector: described.vector === undefined ? EMPTY : Buffer.from(described.vector.buffer, described.vector.byteOffset, described.vector.byteLength) };
        sessions.remember(task, answer);
        await report(task, ctx, stage, answer, described);
      } catch (err) {
        if (err instanceof Refused) return refuse(task, ctx, err.message);
        // A transient failure keeps the round: the task runs again if re-sent and sends the same answer.
        if (!isServiceError(err)) sessions.discard(task);
        throw err;
      }
    },
  };
}

const list = (ids: readonly string[]): string => (ids.length === 0 ? 'none' : ids.join(', '));

/** The survivor set of a request the client has just accepted (so its shape is checked). */
const survivorsOf = (request: unknown): string[] => [...(request as { survivors: string[] }).survivors];

/** The five stage handlers, sharing one set of rounds in progress. */
export function secaggTaskHandlers(sessions: SecAggSessions): TaskHandler[] {
  return [
    handler(sessions, {
      kind: 'TASK_KIND_SECAGG_KEYS',
      stage: 'keys',
      async answer(task, _ctx, client) {
        // The payload is the round header: it must be this task's round (an empty one carries nothing to check).
        if (task.payload.length > 0) {
          const header = parsePayload(task) as { studyId?: unknown; round?: unknown; attempt?: unknown } | null;
          if (header === null || typeof header !== 'object' || header.studyId !== task.studyId || header.round !== task.round || header.attempt !== task.attempt) {
            throw new Refused(`Task.payload: the keys request is for study ${String(header?.studyId)} round ${String(header?.round)} attempt ${String(header?.attempt)}, not this task's (${task.studyId} round ${task.round} attempt ${task.attempt})`);
          }
        }
        const message = refusing(() => client.keys());
        const identityKeyFingerprint = identityFingerprint(Buffer.from(message.identityKey, 'base64'));
        return {
          message,
          detail: `two fresh X25519 public keys for this round (c: to seal shares to neighbours, s: to agree pairwise masks), signed with this clinic's identity key (fingerprint ${identityKeyFingerprint}); no data`,
          summary: { cPublic: message.cPublic, sPublic: message.sPublic, identityKey: message.identityKey, identityKeyFingerprint, signature: message.signature },
        };
      },
    }),
    handler(sessions, {
      kind: 'TASK_KIND_SECAGG_SHARES',
      stage: 'shares',
      async answer(task, _ctx, client) {
        const request = parsePayload(task);
        // The client checks each neighbour's signature and its identity key against the pins (peer-pins.ts) first.
        const message = refusing(() => client.shares(request));
        const to = message.shares.map((s) => s.to);
        return {
          message,
          detail: `Shamir shares of this round's self-mask seed and mask key, each pair encrypted (AES-256-GCM) for one neighbour and readable only by it: ${list(to)} (their signed keys checked against the identity keys pinned here); and a SHA-256 commitment to the self-mask seed; no data`,
          summary: { to, ciphertexts: to.length, selfMaskCommitment: message.selfMaskCommitment },
        };
      },
    }),
    handler(sessions, {
      kind: 'TASK_KIND_SECAGG_MASKED_INPUT',
      stage: 'masked_input',
      async answer(task, ctx, client) {
        const request = parsePayload(task);
        const section = ctx.manifest.privacy!.secureAggregation!;
        // Trains exactly as TRAIN: budget, download, local training, DP clipping and noise (train-round.ts).
        const round = await trainRound(task, ctx, true);
        if (round === undefined) return undefined;
        try {
          const { values, clipped } = clipToRange(round.delta!, section.clipRange);
          if (clipped > 0) {
            // Local only: the count depends on the data, so it never goes into anything sent (review clinic2 HIGH 1).
            ctx.log.warn({ event: 'secagg.values_clipped', clipped, values: values.length, clipRange: section.clipRange }, `round ${task.round}: ${clipped} of ${values.length} values of this clinic's model change were outside ±${section.clipRange} and were clipped to it before masking (privacy.secureAggregation.clipRange)`);
          }
          const { message, vector } = refusing(() => client.maskedInput(request, values));
          // Spent before anything leaves (as TRAIN): a report that fails afterwards has still been paid for. The charge
          // depends on the manifest only (privacy-budget.ts SECURE_AGGREGATION_COUNTS), never on the data.
          round.commitSpend();
          const dp = round.dpInfo;
          return {
            message,
            vector,
            detail: `this clinic's model change (${values.length} values, clipped to ±${section.clipRange}${clipped > 0 ? `: ${clipped} values clipped` : ''}${dp === undefined ? '' : `, after DP clipping to L2 norm ${dp.clipNorm}${dp.noiseStd > 0 ? ` and Gaussian noise σ=${dp.noiseStd.toPrecision(4)}` : ''}`}), quantised to ${section.valueBits} bits and masked, sent as ${vector.length} packed bytes: the coordinator can read only the sum of the round's clinics`,
            // On the wire: only the header (body) and the packed vector, whose sizes and digests report() adds.
            summary: {},
          };
        } finally {
          if (round.dpInfo !== undefined) ctx.privacyChanged?.(false);
        }
      },
    }),
    handler(sessions, {
      kind: 'TASK_KIND_SECAGG_CONSISTENCY',
      stage: 'consistency',
      async answer(task, _ctx, client) {
        const request = parsePayload(task);
        // The client refuses a set without this clinic, smaller than its minSurvivors, or other than one it signed before.
        const message = refusing(() => client.consistency(request));
        const survivors = survivorsOf(request);
        return {
          message,
          detail: `this clinic's signature (its identity key) on the round's survivor set, the ${survivors.length} clinics whose masked input the coordinator says it took into the sum (${list(survivors)}): this clinic unmasks only for this set; no data`,
          summary: { survivors, signature: message.signature },
        };
      },
    }),
    handler(sessions, {
      kind: 'TASK_KIND_SECAGG_UNMASK',
      stage: 'unmask',
      async answer(task, _ctx, client) {
        const request = parsePayload(task);
        // Only for the survivor set this clinic signed, with at least threshold neighbours' valid signatures on it.
        const message = refusing(() => client.unmask(request));
        const survivors = survivorsOf(request);
        const signers = (request as { signatures: { id: string }[] }).signatures.map((s) => s.id);
        const selfMaskSharesOf = message.selfMaskShares.map((s) => s.of);
        const keySharesOf = message.keyShares.map((s) => s.of);
        return {
          message,
          detail: `shares held for neighbours, so the coordinator can remove masks from the sum of the survivor set this clinic signed (${survivors.length} clinics, countersigned by neighbours ${list(signers)}): of the self-mask seeds of those in it (${list(selfMaskSharesOf)}) and of the mask keys of those not in it (${list(keySharesOf)}); never both for one neighbour; no data`,
          summary: { survivors: survivors.length, signers, selfMaskSharesOf, keySharesOf },
        };
      },
    }),
  ];
}
