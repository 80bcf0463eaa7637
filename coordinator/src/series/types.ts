import type { PromotionDecision } from '@fedlhs/core';
import type { PromotionRecord, SeriesRecord, SeriesRunRecord } from '../store.js';

/**
 * What operators can do with series (issue 13): the admin API, the CLI and the dashboard call
 * these; `SeriesService` (service.ts) implements them. Every action is one unit of work with its
 * admin-action row under the operator's name, and emits 'change' {kind: 'series', seriesName}.
 * Errors are FedlhsError: MANIFEST_INVALID (a template, naming the field), NOT_FOUND (no such
 * series or release), ALREADY_EXISTS (a series of that name), FAILED_PRECONDITION (run-now while
 * a run is in progress; rollback without an earlier champion), INVALID_ARGUMENT.
 */
export interface SeriesActions {
  /** Validates and stores a template (state active); its first run is due at the next scheduled time (a data schedule: at once). */
  create(template: unknown, by: string): Promise<SeriesRecord>;
  /** Replaces the template (a new hash: clinics approve it again); runs already started keep theirs. */
  update(name: string, template: unknown, by: string): Promise<SeriesRecord>;
  setState(name: string, state: SeriesRecord['state'], by: string): Promise<SeriesRecord>;
  /** Starts the next run now (trigger `operator:<by>`), derived at the current time. */
  runNow(name: string, by: string): Promise<SeriesRunRecord>;
  /** Points `champion` at a release of the series, recorded with the evidence of its run if it has one. */
  promote(name: string, version: number, by: string): Promise<PromotionRecord>;
  /** Points `champion` back at the champion before the current one (promotion history). */
  rollback(name: string, by: string): Promise<PromotionRecord>;
}

/** A run as the views show it. */
export interface SeriesRunView extends SeriesRunRecord {
  studyState: string;
  /** The release the run made, if any. */
  releasedVersion: number | null;
  /** The champion decision on that release, if one was made. */
  decision: (Omit<PromotionRecord, 'evidence'> & { evidence: PromotionDecision & Record<string, unknown> }) | null;
}
