// Original file: /work/main/proto/fedlhs/v1/federation.proto


/**
 * ## Privacy budgets
 * A clinic may hold its own differential-privacy budget: a maximum epsilon per study and over its
 * lifetime, at its own delta. Before each TRAIN task of a study whose manifest has privacy.dp, the
 * agent computes with an RDP accountant the epsilon the round would add under the manifest's
 * mechanism (as the clinic sees it: local noise protects it from everyone; distributed noise
 * counts noiseMultiplier/sqrt(clients.min), the clinic's own share, also with secure aggregation
 * (the survivor set is vouched for by the coordinator alone); central noise only if the clinic
 * trusts the coordinator to add it), and declines the task
 * (TaskUpdate DECLINED, reason starting "privacy budget:") when the study or lifetime total would
 * exceed its limit; when not even one more round fits it sends StudyReadiness WITHDRAWN with a
 * detail starting "privacy budget:". A clinic with a budget declines studies without DP.
 */
export interface PrivacyBudget {
  /**
   * Epsilon spent in this study so far, and the clinic's limit for one study (0: no limit).
   */
  'epsilonSpent'?: (number | string);
  'epsilonStudyLimit'?: (number | string);
  /**
   * Epsilon spent over the clinic's lifetime (all studies, composed), and its limit (0: none).
   */
  'epsilonLifetimeSpent'?: (number | string);
  'epsilonLifetimeLimit'?: (number | string);
  /**
   * The clinic's delta.
   */
  'delta'?: (number | string);
}

/**
 * ## Privacy budgets
 * A clinic may hold its own differential-privacy budget: a maximum epsilon per study and over its
 * lifetime, at its own delta. Before each TRAIN task of a study whose manifest has privacy.dp, the
 * agent computes with an RDP accountant the epsilon the round would add under the manifest's
 * mechanism (as the clinic sees it: local noise protects it from everyone; distributed noise
 * counts noiseMultiplier/sqrt(clients.min), the clinic's own share, also with secure aggregation
 * (the survivor set is vouched for by the coordinator alone); central noise only if the clinic
 * trusts the coordinator to add it), and declines the task
 * (TaskUpdate DECLINED, reason starting "privacy budget:") when the study or lifetime total would
 * exceed its limit; when not even one more round fits it sends StudyReadiness WITHDRAWN with a
 * detail starting "privacy budget:". A clinic with a budget declines studies without DP.
 */
export interface PrivacyBudget__Output {
  /**
   * Epsilon spent in this study so far, and the clinic's limit for one study (0: no limit).
   */
  'epsilonSpent': (number);
  'epsilonStudyLimit': (number);
  /**
   * Epsilon spent over the clinic's lifetime (all studies, composed), and its limit (0: none).
   */
  'epsilonLifetimeSpent': (number);
  'epsilonLifetimeLimit': (number);
  /**
   * The clinic's delta.
   */
  'delta': (number);
}
