import type { Task__Output } from '@fedlhs/proto';
import { authMetadata, deadlineIn } from '../connection.js';
import type { TaskContext, TaskHandler } from '../task-runner.js';

/** An evaluation task: this round's global model on the local hold-out split; only the aggregate metrics are reported. */
export const evaluateTask: TaskHandler = {
  kind: 'TASK_KIND_EVALUATE',
  name: 'evaluate',
  sentEvent: 'evaluation_sent',
  async run(task: Task__Output, ctx: TaskContext): Promise<void> {
    const { log } = ctx;
    const { data, runtime } = await ctx.loadModel();
    const metrics = await runtime.evaluate(data.holdout.x, data.holdout.y);
    const sentReport = { evaluationReport: { taskId: task.taskId, studyId: task.studyId, round: task.round, metrics: { numExamples: metrics.numExamples, loss: metrics.loss, accuracy: metrics.accuracy, auc: metrics.auc } } };
    ctx.state.audit({
      event: 'evaluation_sent', coordinator: ctx.config.coordinator.address, studyId: task.studyId, round: task.round, taskId: task.taskId,
      numExamples: metrics.numExamples, metrics: { loss: metrics.loss, accuracy: metrics.accuracy, auc: metrics.auc }, outcome: 'sending', sent: sentReport,
    });
    await ctx.withRetry('report', () =>
      new Promise((resolve, reject) => {
        ctx.clients.federation.ReportEvaluation(
          { taskId: task.taskId, studyId: task.studyId, round: task.round, metrics: { numExamples: metrics.numExamples, loss: metrics.loss, accuracy: metrics.accuracy, ...(metrics.auc === undefined ? {} : { auc: metrics.auc }) } },
          authMetadata(ctx.credential.credential),
          { deadline: deadlineIn(30_000) },
          (err, receipt) => (err === null ? resolve(receipt) : reject(err)),
        );
      }),
    );
    ctx.state.audit({
      event: 'evaluation_sent', coordinator: ctx.config.coordinator.address, studyId: task.studyId, round: task.round, taskId: task.taskId,
      numExamples: metrics.numExamples, metrics: { loss: metrics.loss, accuracy: metrics.accuracy, auc: metrics.auc }, outcome: 'accepted', sent: sentReport,
    });
    log.info({ event: 'evaluation.sent', loss: metrics.loss, accuracy: metrics.accuracy, auc: metrics.auc }, `round ${task.round}: hold-out evaluation reported`);
  },
};
