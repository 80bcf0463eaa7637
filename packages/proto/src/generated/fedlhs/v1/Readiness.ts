// Original file: /work/main/proto/fedlhs/v1/federation.proto

export const Readiness = {
  READINESS_UNSPECIFIED: 'READINESS_UNSPECIFIED',
  /**
   * Approved by the clinic operator and the data can produce the feature spec.
   */
  READINESS_READY: 'READINESS_READY',
  /**
   * The clinic operator has not approved this manifest hash (yet).
   */
  READINESS_NOT_APPROVED: 'READINESS_NOT_APPROVED',
  /**
   * Fewer eligible local examples than the agent's configured minimum cohort size.
   */
  READINESS_COHORT_TOO_SMALL: 'READINESS_COHORT_TOO_SMALL',
  /**
   * The agent cannot produce the study's feature spec from its data.
   */
  READINESS_FEATURE_SPEC_UNSUPPORTED: 'READINESS_FEATURE_SPEC_UNSUPPORTED',
  /**
   * The local data could not be read; detail says why (never record contents).
   */
  READINESS_DATA_ERROR: 'READINESS_DATA_ERROR',
  /**
   * The agent will not take part for another reason given in detail.
   */
  READINESS_WITHDRAWN: 'READINESS_WITHDRAWN',
} as const;

export type Readiness =
  | 'READINESS_UNSPECIFIED'
  | 0
  /**
   * Approved by the clinic operator and the data can produce the feature spec.
   */
  | 'READINESS_READY'
  | 1
  /**
   * The clinic operator has not approved this manifest hash (yet).
   */
  | 'READINESS_NOT_APPROVED'
  | 2
  /**
   * Fewer eligible local examples than the agent's configured minimum cohort size.
   */
  | 'READINESS_COHORT_TOO_SMALL'
  | 3
  /**
   * The agent cannot produce the study's feature spec from its data.
   */
  | 'READINESS_FEATURE_SPEC_UNSUPPORTED'
  | 4
  /**
   * The local data could not be read; detail says why (never record contents).
   */
  | 'READINESS_DATA_ERROR'
  | 5
  /**
   * The agent will not take part for another reason given in detail.
   */
  | 'READINESS_WITHDRAWN'
  | 6

export type Readiness__Output = typeof Readiness[keyof typeof Readiness]
