import type { Task__Output } from '@fedlhs/proto';
import type { TaskContext, TaskHandler } from '../task-runner.js';
import { uploadUpdate } from '../transfer.js';
import { clipIndicatorText, trainRound } from './train-round.js';

/**
 * A training task: local epochs (or steps) from this round's global model, then the trained
 * weights with example count and training metrics, audited before and after the upload.
 */
export const trainTask: TaskHandler = {
  kind: 'TASK_KIND_TRAIN',
  name: 'train',
  sentEvent: 'update_sent',
  async run(task: Task__Output, ctx: TaskContext): Promise<void> {
    const { log } = ctx;
    // With secure aggregation this clinic's update leaves only masked (tasks/secagg.ts): a TRAIN
    // task would send it in the clear, and the budget accounts distributed noise on the sum only.
    if (ctx.manifest.privacy?.secureAggregation !== undefined) {
      const why = 'this study uses secure aggregation: this clinic sends its update only masked (secure-aggregation stages), never as a plain TRAIN upload';
      if (ctx.decline === undefined) throw new Error(why);
      ctx.decline(why);
      return;
    }
    // Budget decision, training, DP clipping and noise (train-round.ts, shared with secure aggregation).
    const round = await trainRound(task, ctx);
    if (round === undefined) return;
    const { runtime, sha256, timeoutMs, trainMetrics, numExamples, dpInfo, clipIndicator } = round;
    const trained = round.weights;
    // Spent before anything leaves: an upload that fails afterwards has still been paid for.
    round.commitSpend();
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
      // Adaptive clipping: the (noisy) indicator leaves in the header too, so the audit shows it.
      ...(clipIndicator === undefined ? {} : { dpClipIndicator: clipIndicator.value, dpClipIndicatorContents: clipIndicatorText(clipIndicator).slice(2) }),
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
          numExamples, trainMetrics, specs: runtime.specs, weights, chunkBytes: ctx.config.chunkBytes, dpClipIndicator: clipIndicator?.value,
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
