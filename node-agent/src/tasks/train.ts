import { createHash } from 'node:crypto';
import type { Task__Output } from '@fedlhs/proto';
import type { TaskContext, TaskHandler } from '../task-runner.js';
import { uploadUpdate } from '../transfer.js';
import { PrivacyBudget, fmtEpsilon } from '../privacy-budget.js';
import { privatiseUpdate, type DpUpdateInfo } from '../privacy-update.js';
import { roundCount } from '../privacy-counts.js';

/**
 * A training task: local epochs (or steps) from this round's global model, then the trained
 * weights with example count and training metrics, audited before and after the upload.
 */
export const trainTask: TaskHandler = {
  kind: 'TASK_KIND_TRAIN',
  name: 'train',
  sentEvent: 'update_sent',
  async run(task: Task__Output, ctx: TaskContext): Promise<void> {
    const { manifest, log } = ctx;
    const dp = manifest.privacy?.dp;
    // The clinic's budget decides before anything is read or trained (proto "Privacy budgets").
    const budget = new PrivacyBudget(ctx.state, ctx.config.privacy);
    const decision = budget.decide(task.studyId, task.round, manifest);
    if (!decision.ok) {
      log.warn({ event: 'privacy.round_declined', epsilonStudy: decision.epsilonStudy, epsilonLifetime: decision.epsilonLifetime, reason: decision.reason }, decision.reason);
      if (ctx.decline === undefined) throw new Error(decision.reason);
      ctx.decline(decision.reason);
      ctx.privacyChanged?.(true);
      return;
    }
    const { data, runtime, sha256, timeoutMs } = await ctx.loadModel();
    // DP-FedAvg needs the round's model itself: Δ = trained − round model.
    const roundModel = dp === undefined ? undefined : runtime.getWeights();
    const steps = manifest.training.localSteps;
    const epochs = steps === undefined ? manifest.training.localEpochs : 1;
    // FedProx: the local objective gains (mu/2)·‖w − w_global‖², anchored at this round's model.
    const mu = manifest.aggregation.strategy === 'fedprox' ? (manifest.aggregation.parameters.mu ?? 0) : 0;
    await runtime.fit(data.train.x, data.train.y, {
      epochs,
      // Reproducible local training: the shuffle depends only on the study, round, attempt and node.
      shuffleSeed: createHash('sha256').update(`${manifest.seed}/${task.round}/${task.attempt}/${ctx.credential.nodeId}`).digest().readUInt32BE(0),
      ...(steps === undefined ? {} : { steps }),
      ...(mu > 0 ? { proximal: { mu, reference: runtime.getWeights() } } : {}),
      batchSize: manifest.training.batchSize,
      onEpochEnd: (epoch, loss) => {
        log.info({ epoch: epoch + 1, epochs, loss }, `round ${task.round}: epoch ${epoch + 1}/${epochs} loss ${loss.toFixed(4)}`);
        ctx.progress('train', (epoch + 1) / epochs, epoch + 1, epochs);
      },
    });
    if (ctx.isCancelled()) {
      log.info('task cancelled during training; nothing sent');
      return;
    }
    let trained = runtime.getWeights();
    const trainMetrics = await runtime.evaluate(data.train.x, data.train.y);
    // Counts that leave are rounded when the manifest says so, as the readiness's training_rows
    // were (studies.ts): an update never claims more than the readiness stated.
    const numExamples = roundCount(manifest, data.train.rows);
    trainMetrics.numExamples = roundCount(manifest, trainMetrics.numExamples);
    let dpInfo: DpUpdateInfo | undefined;
    if (dp !== undefined && roundModel !== undefined) {
      const out = privatiseUpdate(trained, roundModel, dp, manifest.clients.min);
      trained = out.weights;
      dpInfo = out.info;
      // Spent before anything leaves: an upload that fails afterwards has still been paid for.
      const at = Date.now();
      ctx.state.recordPrivacySpend({ studyId: task.studyId, round: task.round, taskId: task.taskId, rdp: decision.rdp, epsilonAfter: decision.epsilonStudy, at });
      const privacy = { epsilonStudy: decision.epsilonStudy, epsilonLifetime: decision.epsilonLifetime, delta: ctx.config.privacy.delta, effectiveNoiseMultiplier: decision.noiseMultiplier, placement: dp.placement };
      ctx.state.audit({
        event: 'privacy_spent', coordinator: ctx.config.coordinator.address, studyId: task.studyId, round: task.round, taskId: task.taskId, privacy,
        detail: `round ${task.round}: ε=${fmtEpsilon(decision.epsilonStudy)} for this study, ε=${fmtEpsilon(decision.epsilonLifetime)} over this clinic's lifetime (δ=${ctx.config.privacy.delta}); update clipped to ${dpInfo.clipNorm}${dpInfo.noiseStd > 0 ? `, Gaussian noise σ=${dpInfo.noiseStd.toPrecision(4)} added here` : ', noise added by the coordinator (central)'}`,
      });
      log.info({ event: 'privacy.spent', ...privacy, clipNorm: dpInfo.clipNorm, normBefore: dpInfo.normBefore, clipFactor: dpInfo.clipFactor, noiseStd: dpInfo.noiseStd }, `round ${task.round}: privacy spent, study ε=${fmtEpsilon(decision.epsilonStudy)}, lifetime ε=${fmtEpsilon(decision.epsilonLifetime)}`);
    }
    const uploadStart = performance.now();
    // Audit before anything leaves, then the outcome: a crash or a rejection mid-send still shows what was sent.
    // The update header exactly as sent, and what the payload is (its size; its digest once the coordinator confirms it).
    const sentHeader = {
      taskId: task.taskId, studyId: task.studyId, round: task.round, nodeId: ctx.credential.nodeId, baseModelSha256: sha256,
      numExamples, trainMetrics: { numExamples: trainMetrics.numExamples, loss: trainMetrics.loss, accuracy: trainMetrics.accuracy, auc: trainMetrics.auc },
      weights: {
        tensors: runtime.specs.length, dtype: 'float32', totalBytes: trained.byteLength,
        contents: dpInfo === undefined ? 'the trained model weights'
          : `the round's model plus this clinic's change clipped to L2 norm ${dpInfo.clipNorm}${dpInfo.noiseStd > 0 ? ` with Gaussian noise of σ=${dpInfo.noiseStd.toPrecision(4)} per weight (${dpInfo.placement} DP)` : ' (central DP: the coordinator adds the noise)'}`,
      },
    };
    ctx.state.audit({
      event: 'update_sent', coordinator: ctx.config.coordinator.address, studyId: task.studyId, round: task.round, taskId: task.taskId,
      bytes: trained.byteLength, numExamples, metrics: { loss: trainMetrics.loss, accuracy: trainMetrics.accuracy, auc: trainMetrics.auc }, outcome: 'sending',
      sent: { updateHeader: sentHeader },
    });
    const weights = trained;
    let receipt;
    try {
      receipt = await ctx.withRetry('upload', () =>
        uploadUpdate(ctx.clients.federation, ctx.credential.credential, {
          taskId: task.taskId, studyId: task.studyId, round: task.round, nodeId: ctx.credential.nodeId, baseModelSha256: sha256,
          numExamples, trainMetrics, specs: runtime.specs, weights, chunkBytes: ctx.config.chunkBytes,
        }, timeoutMs, ctx.transferProgress('upload')),
      );
    } finally {
      // Spent or not sent, the study's readiness reflects the ledger now (privacy budget).
      if (dpInfo !== undefined) ctx.privacyChanged?.(false);
    }
    const uploadMs = performance.now() - uploadStart;
    log.info({ event: 'update.sent', bytes: trained.byteLength, ms: Math.round(uploadMs), mbPerS: Number((trained.byteLength / 1048576 / (uploadMs / 1000)).toFixed(1)) }, 'update uploaded and accepted');
    ctx.state.audit({
      event: 'update_sent', coordinator: ctx.config.coordinator.address, studyId: task.studyId, round: task.round, taskId: task.taskId,
      bytes: trained.byteLength, sha256: receipt.sha256.toString('hex'), numExamples,
      metrics: { loss: trainMetrics.loss, accuracy: trainMetrics.accuracy, auc: trainMetrics.auc }, outcome: receipt.duplicate ? 'accepted (duplicate)' : 'accepted',
      sent: { updateHeader: { ...sentHeader, weights: { ...sentHeader.weights, sha256: receipt.sha256.toString('hex') } } },
    });
    log.info({ event: 'update.accepted', bytes: trained.byteLength, numExamples, trainLoss: trainMetrics.loss }, `round ${task.round}: update accepted by coordinator`);
  },
};
