import { createHash } from 'node:crypto';
import type { Task__Output } from '@fedlhs/proto';
import type { TaskContext, TaskHandler } from '../task-runner.js';
import { uploadUpdate } from '../transfer.js';

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
    const { data, runtime, sha256, timeoutMs } = await ctx.loadModel();
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
    const trained = runtime.getWeights();
    const trainMetrics = await runtime.evaluate(data.train.x, data.train.y);
    const uploadStart = performance.now();
    // Audit before anything leaves, then the outcome: a crash or a rejection mid-send still shows what was sent.
    // The update header exactly as sent, and what the payload is (its size; its digest once the coordinator confirms it).
    const sentHeader = {
      taskId: task.taskId, studyId: task.studyId, round: task.round, nodeId: ctx.credential.nodeId, baseModelSha256: sha256,
      numExamples: data.train.rows, trainMetrics: { numExamples: trainMetrics.numExamples, loss: trainMetrics.loss, accuracy: trainMetrics.accuracy, auc: trainMetrics.auc },
      weights: { tensors: runtime.specs.length, dtype: 'float32', totalBytes: trained.byteLength, contents: 'the trained model weights' },
    };
    ctx.state.audit({
      event: 'update_sent', coordinator: ctx.config.coordinator.address, studyId: task.studyId, round: task.round, taskId: task.taskId,
      bytes: trained.byteLength, numExamples: data.train.rows, metrics: { loss: trainMetrics.loss, accuracy: trainMetrics.accuracy, auc: trainMetrics.auc }, outcome: 'sending',
      sent: { updateHeader: sentHeader },
    });
    const receipt = await ctx.withRetry('upload', () =>
      uploadUpdate(ctx.clients.federation, ctx.credential.credential, {
        taskId: task.taskId, studyId: task.studyId, round: task.round, nodeId: ctx.credential.nodeId, baseModelSha256: sha256,
        numExamples: data.train.rows, trainMetrics, specs: runtime.specs, weights: trained, chunkBytes: ctx.config.chunkBytes,
      }, timeoutMs, ctx.transferProgress('upload')),
    );
    const uploadMs = performance.now() - uploadStart;
    log.info({ event: 'update.sent', bytes: trained.byteLength, ms: Math.round(uploadMs), mbPerS: Number((trained.byteLength / 1048576 / (uploadMs / 1000)).toFixed(1)) }, 'update uploaded and accepted');
    ctx.state.audit({
      event: 'update_sent', coordinator: ctx.config.coordinator.address, studyId: task.studyId, round: task.round, taskId: task.taskId,
      bytes: trained.byteLength, sha256: receipt.sha256.toString('hex'), numExamples: data.train.rows,
      metrics: { loss: trainMetrics.loss, accuracy: trainMetrics.accuracy, auc: trainMetrics.auc }, outcome: receipt.duplicate ? 'accepted (duplicate)' : 'accepted',
      sent: { updateHeader: { ...sentHeader, weights: { ...sentHeader.weights, sha256: receipt.sha256.toString('hex') } } },
    });
    log.info({ event: 'update.accepted', bytes: trained.byteLength, numExamples: data.train.rows, trainLoss: trainMetrics.loss }, `round ${task.round}: update accepted by coordinator`);
  },
};
