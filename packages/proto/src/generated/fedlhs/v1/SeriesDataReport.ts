// Original file: /work/main/proto/fedlhs/v1/federation.proto

import type { Long } from '@grpc/proto-loader';

/**
 * ## Study series
 * A series is a manifest template plus a schedule (the fedlhs README, "Study series"); each run
 * is an ordinary study whose manifest is derived from the template and carries
 * series {name, run, templateSha256, champion?}. A clinic may approve a series once, by its
 * template hash: an agent then treats a run as approved when the run's manifest, with the
 * fields a series lets vary removed (series.run and series.champion; data.cohort.index.from
 * and .to only when the template has a "window"; model.initialWeights only when the template's
 * start is "champion"), equals the manifest the template derives (for the same run) with the
 * same fields removed; and the varying fields are what the template allows: a window of exactly
 * window.days days whose index.to is no later than the agent's own today minus
 * window.labelLagDays minus the label's horizonDays, and initial weights that are exactly the
 * run's series.champion release of the series' name (none without a champion). The agent must first check that series_template_sha256 is the
 * SHA-256 of series_template_json and equals the manifest's series.templateSha256. Any other
 * difference needs the operator's approval of the run's own manifest hash; StudyReadiness is
 * then NOT_APPROVED with a detail naming the changed fields. An agent that does not implement
 * series approval simply approves runs by manifest hash, as any study.
 * 
 * ## Data-triggered series
 * A template whose schedule is {"type": "data", "newLabelled": N} runs when the clinics together
 * report at least N newly labelled patients since its last run; its first run starts when the
 * series is created. An agent that approved such a template (it learns templates from the runs'
 * announcements) sends one SeriesDataReport per series: on every new session after the
 * announcements, when a run of the series ends, and when its local export changes; at most one
 * per series per minute. The coordinator keeps the latest report per node and series (a
 * report for another template hash or an older run is ignored), adds up new_labelled over the
 * nodes, counting a suppressed report as 0 (so a run may start later than N patients would
 * allow, never earlier), and starts the next run once the sum reaches N. A node that sends
 * reports for a series it has no part in is ignored (logged); a malformed report is
 * INVALID_ARGUMENT and ends the session, as any malformed message.
 */
export interface SeriesDataReport {
  /**
   * The series (a study name).
   */
  'seriesName'?: (string);
  /**
   * The template the count is for (sha256-hex): the template of the series' last run.
   */
  'templateSha256'?: (string);
  /**
   * The last run of the series the count follows (>= 1).
   */
  'afterRun'?: (number);
  /**
   * Patients eligible under the series' study definition whose outcome is known and who were
   * not counted at run after_run: with a moving window (template "window"), those whose index
   * date falls after that run's data.cohort.index.to and on or before the index.to a run
   * derived now would have; otherwise, eligible labelled patients now minus those the agent
   * had when it took part in run after_run (at least 0). At most 10^9.
   */
  'newLabelled'?: (number | string | Long);
  /**
   * True when the count is below the series' data.minCellCount: new_labelled is then 0.
   */
  'suppressed'?: (boolean);
}

/**
 * ## Study series
 * A series is a manifest template plus a schedule (the fedlhs README, "Study series"); each run
 * is an ordinary study whose manifest is derived from the template and carries
 * series {name, run, templateSha256, champion?}. A clinic may approve a series once, by its
 * template hash: an agent then treats a run as approved when the run's manifest, with the
 * fields a series lets vary removed (series.run and series.champion; data.cohort.index.from
 * and .to only when the template has a "window"; model.initialWeights only when the template's
 * start is "champion"), equals the manifest the template derives (for the same run) with the
 * same fields removed; and the varying fields are what the template allows: a window of exactly
 * window.days days whose index.to is no later than the agent's own today minus
 * window.labelLagDays minus the label's horizonDays, and initial weights that are exactly the
 * run's series.champion release of the series' name (none without a champion). The agent must first check that series_template_sha256 is the
 * SHA-256 of series_template_json and equals the manifest's series.templateSha256. Any other
 * difference needs the operator's approval of the run's own manifest hash; StudyReadiness is
 * then NOT_APPROVED with a detail naming the changed fields. An agent that does not implement
 * series approval simply approves runs by manifest hash, as any study.
 * 
 * ## Data-triggered series
 * A template whose schedule is {"type": "data", "newLabelled": N} runs when the clinics together
 * report at least N newly labelled patients since its last run; its first run starts when the
 * series is created. An agent that approved such a template (it learns templates from the runs'
 * announcements) sends one SeriesDataReport per series: on every new session after the
 * announcements, when a run of the series ends, and when its local export changes; at most one
 * per series per minute. The coordinator keeps the latest report per node and series (a
 * report for another template hash or an older run is ignored), adds up new_labelled over the
 * nodes, counting a suppressed report as 0 (so a run may start later than N patients would
 * allow, never earlier), and starts the next run once the sum reaches N. A node that sends
 * reports for a series it has no part in is ignored (logged); a malformed report is
 * INVALID_ARGUMENT and ends the session, as any malformed message.
 */
export interface SeriesDataReport__Output {
  /**
   * The series (a study name).
   */
  'seriesName': (string);
  /**
   * The template the count is for (sha256-hex): the template of the series' last run.
   */
  'templateSha256': (string);
  /**
   * The last run of the series the count follows (>= 1).
   */
  'afterRun': (number);
  /**
   * Patients eligible under the series' study definition whose outcome is known and who were
   * not counted at run after_run: with a moving window (template "window"), those whose index
   * date falls after that run's data.cohort.index.to and on or before the index.to a run
   * derived now would have; otherwise, eligible labelled patients now minus those the agent
   * had when it took part in run after_run (at least 0). At most 10^9.
   */
  'newLabelled': (number);
  /**
   * True when the count is below the series' data.minCellCount: new_labelled is then 0.
   */
  'suppressed': (boolean);
}
