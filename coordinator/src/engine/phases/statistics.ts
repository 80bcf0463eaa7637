import {
  FedlhsError,
  combineStats,
  normalizationFrom,
  statisticsExpectations,
  studyNormalizationOptions,
  unnormalisable,
  validateClinicStats,
  type ClinicStats,
  type Normalization,
} from '@fedlhs/core';
import type { Accepted, LiveTask, Phase, PhaseContext, PhaseOutput, PhasePlan, PhaseResult, StudyView } from '../phase.js';

/**
 * Federated statistics (only for `federated-zscore` without parameters yet): every READY clinic
 * reports sufficient statistics of its features, checked by core validateClinicStats; on close
 * they are combined into the study's normalisation, which the next phase's unit persists before
 * any TRAIN task carries it. A feature withheld everywhere fails the study (or uses the declared
 * fallback, loudly).
 */
export class StatisticsPhase implements Phase {
  readonly name = 'statistics';
  readonly roundState = 'STATISTICS' as const;
  readonly taskKinds = ['STATISTICS'] as const;
  readonly overCohort = false;
  readonly failurePrefix = 'statistics: ';
  private readonly reports = new Map<string, ClinicStats>();

  static applies(study: StudyView): boolean {
    return study.manifest.data.normalization === 'federated-zscore' && study.record.parameters === null;
  }

  plan(ctx: PhaseContext): PhasePlan {
    // All READY clinics, not only the cohort: the normalisation should cover as many as possible.
    return {
      tasks: ctx.readyNodes().map((nodeId) => ({ nodeId, kind: 'STATISTICS', model: undefined })),
      deadline: ctx.now() + ctx.study.manifest.deadlines.roundSeconds * 1000,
      quorum: ctx.study.manifest.clients.quorum,
    };
  }

  async accept(ctx: PhaseContext, task: LiveTask, result: PhaseResult): Promise<Accepted> {
    if (result.kind !== 'statistics') throw new FedlhsError('INTERNAL', `statistics phase got a ${result.kind} result`);
    validateClinicStats(result.stats, statisticsExpectations(ctx.study.manifest));
    return {
      ops: [{ op: 'statistics.insert', s: { studyId: ctx.study.id, taskId: task.id, nodeId: task.nodeId, report: JSON.stringify(result.stats), receivedAt: ctx.now() } }],
      detail: null,
      apply: () => void this.reports.set(task.nodeId, result.stats),
    };
  }

  async complete(ctx: PhaseContext): Promise<PhaseOutput> {
    const { manifest } = ctx.study;
    const combined = combineStats([...this.reports.values()]);
    const options = studyNormalizationOptions(manifest);
    let normalization: Normalization;
    try {
      normalization = normalizationFrom(combined, options);
    } catch (err) {
      const features = unnormalisable(combined, options);
      ctx.log.warn({ event: 'statistics.withheld', round: ctx.attempt.round, clinics: combined.clinics, features }, (err as Error).message);
      throw new FedlhsError('STUDY_FAILED', (err as Error).message);
    }
    const fallbacks = normalization.features.filter((f) => f.source !== 'federated');
    if (fallbacks.length > 0) {
      ctx.log.warn(
        {
          event: 'statistics.fallback', round: ctx.attempt.round, clinics: combined.clinics, fallback: manifest.data.normalizationFallback,
          features: fallbacks.map((f) => ({ name: f.name, source: f.source, withheldAt: f.withheldAt, mean: f.mean, std: f.std })),
        },
        `no federated statistics for ${fallbacks.map((f) => f.name).join(', ')}: ${fallbacks
          .map((f) => `${f.name} ${f.withheldAt === 0 ? 'has no value at any clinic' : `withheld at ${f.withheldAt} clinic(s)`}, ${f.source === 'excluded' ? 'excluded (constant 0)' : 'scaled by its declared range'}`)
          .join('; ')}`,
      );
    }
    ctx.log.info(
      { event: 'statistics.derived', round: ctx.attempt.round, clinics: this.reports.size, rows: combined.rows, positives: combined.positives, features: normalization.features },
      `federated statistics from ${this.reports.size} clinic(s): ${combined.rows} training records, normalisation fixed for the study`,
    );
    return { parameters: JSON.stringify({ normalization }) };
  }

  dispose(): void {
    this.reports.clear();
  }
}
