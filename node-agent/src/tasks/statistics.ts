import { FedlhsError } from '@fedlhs/core';
import type { Task__Output } from '@fedlhs/proto';
import { authMetadata, deadlineIn } from '../connection.js';
import type { TaskContext, TaskHandler } from '../task-runner.js';
import { countsRounded } from '../privacy-counts.js';

/** A statistics task: reports the training split's sufficient statistics (aggregates, small cells suppressed). */
export const statisticsTask: TaskHandler = {
  kind: 'TASK_KIND_STATISTICS',
  name: 'statistics',
  sentEvent: 'statistics_sent',
  async run(task: Task__Output, ctx: TaskContext): Promise<void> {
    const { manifest, log } = ctx;
    if (countsRounded(manifest)) {
      // The coordinator checks a report's counts against each other and against its sums (core
      // study-statistics.ts: count + missing = rows, mean within the feature's range, 0/1 sums ≤
      // count); rounded counts beside exact sums cannot pass those checks, and the sums of a 0/1
      // feature would give the exact counts away anyway. Refused loudly rather than sent wrong.
      throw new FedlhsError('MANIFEST_INVALID', `privacy.counts is 'rounded' but this study's federated-zscore normalisation needs exact feature statistics: no statistics sent (the study needs privacy.counts 'exact' or another data.normalization)`);
    }
    const stats = await ctx.data.statistics(manifest);
    const message = { taskId: task.taskId, studyId: task.studyId, round: task.round, rows: stats.rows, positives: stats.positives, suppressed: stats.suppressed, features: stats.features };
    // The audit holds the report exactly as sent: label counts (positives) included.
    const sent = { statisticsReport: message };
    ctx.state.audit({
      event: 'statistics_sent', coordinator: ctx.config.coordinator.address, studyId: task.studyId, round: task.round, taskId: task.taskId,
      numExamples: stats.rows, outcome: 'sending', sent,
      detail: `training records ${stats.suppressed && stats.rows === 0 ? 'withheld' : stats.rows}, label positives ${stats.suppressed ? 'withheld' : stats.positives}; ${stats.features.length} feature(s): count, sum, sum of squares, missing, histogram`,
    });
    await ctx.withRetry('statistics', () =>
      new Promise((resolve, reject) => {
        ctx.clients.federation.ReportStatistics(
          message,
          authMetadata(ctx.credential.credential),
          { deadline: deadlineIn(30_000) },
          (err, receipt) => (err === null ? resolve(receipt) : reject(err)),
        );
      }),
    );
    ctx.state.audit({
      event: 'statistics_sent', coordinator: ctx.config.coordinator.address, studyId: task.studyId, round: task.round, taskId: task.taskId,
      numExamples: stats.rows, outcome: 'accepted', sent,
      detail: `training records ${stats.suppressed && stats.rows === 0 ? 'withheld' : stats.rows}, label positives ${stats.suppressed ? 'withheld' : stats.positives}; ${stats.features.length} feature(s): count, sum, sum of squares, missing, histogram; counts < ${manifest.data.minCellCount} withheld`,
    });
    log.info({ event: 'statistics.sent', rows: stats.rows, suppressed: stats.suppressed }, `round ${task.round}: feature statistics reported`);
  },
};
