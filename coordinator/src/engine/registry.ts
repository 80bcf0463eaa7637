import type { Phase, StudyView } from './phase.js';
import { EvaluationPhase } from './phases/evaluation.js';
import { secAggPhases } from './phases/secagg.js';
import { StatisticsPhase } from './phases/statistics.js';
import { TrainingPhase } from './phases/training.js';

/** Makes a study's phase for one attempt, or none when it does not apply. */
export interface PhaseFactory {
  readonly name: string;
  create(study: StudyView): Phase | Phase[] | undefined;
}

/**
 * The phases of a round, in order. Adding a phase is one new file in phases/ and one line here
 * (secure aggregation: the training factory returns its stages instead of `training`).
 */
const PIPELINE: readonly PhaseFactory[] = [
  { name: 'statistics', create: (study) => (StatisticsPhase.applies(study) ? new StatisticsPhase() : undefined) },
  // With privacy.secureAggregation the training is four stages (keys, shares, masked input, unmask).
  { name: 'training', create: (study) => (study.manifest.privacy?.secureAggregation !== undefined ? secAggPhases() : new TrainingPhase()) },
  { name: 'evaluation', create: () => new EvaluationPhase() },
];

/** Fresh phase objects for one attempt of a study's round (each holds only that attempt's state). */
export function pipelineFor(study: StudyView, factories: readonly PhaseFactory[] = PIPELINE): Phase[] {
  return factories.flatMap((f) => f.create(study) ?? []);
}
