// Original file: /work/main/proto/fedlhs/v1/federation.proto

/**
 * Reasons recorded for a rejected contribution, also sent as trailing metadata
 * "fedlhs-rejection-reason" (the enum value name without the prefix, e.g. "STALE"), with
 * "fedlhs-task-open" (see "Errors and rejected contributions").
 * 
 * A closing reason ends the task REJECTED: nothing more is accepted for it (a later call gets
 * FAILED_PRECONDITION [TASK_CLOSED]), and the round goes on without it. Any other reason leaves
 * the task as it was: if it is still open, a corrected call may pass.
 * reason                    gRPC status           closes the task
 * UNKNOWN_TASK              NOT_FOUND             - (no such task)
 * NOT_ASSIGNED              PERMISSION_DENIED     no (not the caller's task)
 * STALE                     FAILED_PRECONDITION   no (the task may already be closed by its round)
 * DUPLICATE_CONFLICT        ALREADY_EXISTS        no (the accepted contribution stands)
 * REPLAYED                  ALREADY_EXISTS        yes
 * BAD_HEADER                INVALID_ARGUMENT      no (framing: resend it correctly)
 * SHAPE_MISMATCH            INVALID_ARGUMENT      yes
 * NON_FINITE                INVALID_ARGUMENT      yes
 * LENGTH_MISMATCH           DATA_LOSS             no (the client ended the stream short: resend)
 * DIGEST_MISMATCH           DATA_LOSS             no (transport: resend)
 * NORM_BOUND                INVALID_ARGUMENT      yes
 * INCONSISTENT_STATISTICS   INVALID_ARGUMENT      yes
 * INVALID_METRICS           INVALID_ARGUMENT      yes
 * BAD_EXAMPLE_COUNT         INVALID_ARGUMENT      yes
 * TASK_CLOSED               FAILED_PRECONDITION   - (already closed; unchanged)
 * UPLOAD_STALLED            DEADLINE_EXCEEDED     no (nothing sent for transfer.uploadIdleSeconds, or the client's deadline passed)
 * UPLOAD_CANCELLED          ABORTED               no (the client cancelled, or the connection broke)
 */
export const RejectionReason = {
  REJECTION_REASON_UNSPECIFIED: 'REJECTION_REASON_UNSPECIFIED',
  REJECTION_REASON_UNKNOWN_TASK: 'REJECTION_REASON_UNKNOWN_TASK',
  REJECTION_REASON_NOT_ASSIGNED: 'REJECTION_REASON_NOT_ASSIGNED',
  REJECTION_REASON_STALE: 'REJECTION_REASON_STALE',
  REJECTION_REASON_DUPLICATE_CONFLICT: 'REJECTION_REASON_DUPLICATE_CONFLICT',
  REJECTION_REASON_REPLAYED: 'REJECTION_REASON_REPLAYED',
  REJECTION_REASON_BAD_HEADER: 'REJECTION_REASON_BAD_HEADER',
  REJECTION_REASON_SHAPE_MISMATCH: 'REJECTION_REASON_SHAPE_MISMATCH',
  REJECTION_REASON_NON_FINITE: 'REJECTION_REASON_NON_FINITE',
  REJECTION_REASON_LENGTH_MISMATCH: 'REJECTION_REASON_LENGTH_MISMATCH',
  REJECTION_REASON_DIGEST_MISMATCH: 'REJECTION_REASON_DIGEST_MISMATCH',
  /**
   * The update's distance from the global model, ‖update − global‖₂, exceeds the study's
   * bound (fixed, or a multiple of the median of earlier accepted updates' distances).
   */
  REJECTION_REASON_NORM_BOUND: 'REJECTION_REASON_NORM_BOUND',
  /**
   * A statistics report is internally inconsistent or impossible for the study: counts below
   * data.minCellCount not marked suppressed, positives above rows, count + missing not rows,
   * a withheld feature with non-zero values, a negative variance, sums outside what values in
   * the feature's declared range (or float32 values) can produce, histograms that do not add
   * up or disagree with the sum, or a feature list other than the study's.
   */
  REJECTION_REASON_INCONSISTENT_STATISTICS: 'REJECTION_REASON_INCONSISTENT_STATISTICS',
  /**
   * Evaluation or training metrics are missing or impossible (see Metrics: loss not finite,
   * negative or above 1000000, accuracy or AUC outside [0, 1], num_examples not positive or
   * above the coordinator's limits.maxExamplesPerUpdate). Closes the task.
   */
  REJECTION_REASON_INVALID_METRICS: 'REJECTION_REASON_INVALID_METRICS',
  /**
   * num_examples is not a positive integer, exceeds the coordinator's limits.maxExamplesPerUpdate,
   * or exceeds the rows this clinic stated for the study's training split (its statistics
   * report, else StudyReadiness.training_rows; a suppressed report bounds nothing), or the
   * clinic stated none. Closes the task.
   */
  REJECTION_REASON_BAD_EXAMPLE_COUNT: 'REJECTION_REASON_BAD_EXAMPLE_COUNT',
  /**
   * The task is closed: rejected with a closing reason, declined, failed, or cancelled (as the
   * open tasks of a round are when it closes). Nothing more is accepted for it. Does not change
   * the task. (A call for an accepted task is compared with what was accepted instead: OK
   * duplicate or DUPLICATE_CONFLICT; a call whose round moved on while the task is still
   * recorded open is STALE.)
   */
  REJECTION_REASON_TASK_CLOSED: 'REJECTION_REASON_TASK_CLOSED',
  /**
   * The uploader sent nothing for the coordinator's upload idle limit (transfer.uploadIdleSeconds,
   * default 120 s): the coordinator ended the call with DEADLINE_EXCEEDED. Does not close the
   * task: a new upload may pass while its round is open.
   */
  REJECTION_REASON_UPLOAD_STALLED: 'REJECTION_REASON_UPLOAD_STALLED',
  /**
   * The upload stream was cancelled or broke before the client ended it (the client cancelled,
   * or the connection was lost). Does not close the task.
   */
  REJECTION_REASON_UPLOAD_CANCELLED: 'REJECTION_REASON_UPLOAD_CANCELLED',
} as const;

/**
 * Reasons recorded for a rejected contribution, also sent as trailing metadata
 * "fedlhs-rejection-reason" (the enum value name without the prefix, e.g. "STALE"), with
 * "fedlhs-task-open" (see "Errors and rejected contributions").
 * 
 * A closing reason ends the task REJECTED: nothing more is accepted for it (a later call gets
 * FAILED_PRECONDITION [TASK_CLOSED]), and the round goes on without it. Any other reason leaves
 * the task as it was: if it is still open, a corrected call may pass.
 * reason                    gRPC status           closes the task
 * UNKNOWN_TASK              NOT_FOUND             - (no such task)
 * NOT_ASSIGNED              PERMISSION_DENIED     no (not the caller's task)
 * STALE                     FAILED_PRECONDITION   no (the task may already be closed by its round)
 * DUPLICATE_CONFLICT        ALREADY_EXISTS        no (the accepted contribution stands)
 * REPLAYED                  ALREADY_EXISTS        yes
 * BAD_HEADER                INVALID_ARGUMENT      no (framing: resend it correctly)
 * SHAPE_MISMATCH            INVALID_ARGUMENT      yes
 * NON_FINITE                INVALID_ARGUMENT      yes
 * LENGTH_MISMATCH           DATA_LOSS             no (the client ended the stream short: resend)
 * DIGEST_MISMATCH           DATA_LOSS             no (transport: resend)
 * NORM_BOUND                INVALID_ARGUMENT      yes
 * INCONSISTENT_STATISTICS   INVALID_ARGUMENT      yes
 * INVALID_METRICS           INVALID_ARGUMENT      yes
 * BAD_EXAMPLE_COUNT         INVALID_ARGUMENT      yes
 * TASK_CLOSED               FAILED_PRECONDITION   - (already closed; unchanged)
 * UPLOAD_STALLED            DEADLINE_EXCEEDED     no (nothing sent for transfer.uploadIdleSeconds, or the client's deadline passed)
 * UPLOAD_CANCELLED          ABORTED               no (the client cancelled, or the connection broke)
 */
export type RejectionReason =
  | 'REJECTION_REASON_UNSPECIFIED'
  | 0
  | 'REJECTION_REASON_UNKNOWN_TASK'
  | 1
  | 'REJECTION_REASON_NOT_ASSIGNED'
  | 2
  | 'REJECTION_REASON_STALE'
  | 3
  | 'REJECTION_REASON_DUPLICATE_CONFLICT'
  | 4
  | 'REJECTION_REASON_REPLAYED'
  | 5
  | 'REJECTION_REASON_BAD_HEADER'
  | 6
  | 'REJECTION_REASON_SHAPE_MISMATCH'
  | 7
  | 'REJECTION_REASON_NON_FINITE'
  | 8
  | 'REJECTION_REASON_LENGTH_MISMATCH'
  | 9
  | 'REJECTION_REASON_DIGEST_MISMATCH'
  | 10
  /**
   * The update's distance from the global model, ‖update − global‖₂, exceeds the study's
   * bound (fixed, or a multiple of the median of earlier accepted updates' distances).
   */
  | 'REJECTION_REASON_NORM_BOUND'
  | 11
  /**
   * A statistics report is internally inconsistent or impossible for the study: counts below
   * data.minCellCount not marked suppressed, positives above rows, count + missing not rows,
   * a withheld feature with non-zero values, a negative variance, sums outside what values in
   * the feature's declared range (or float32 values) can produce, histograms that do not add
   * up or disagree with the sum, or a feature list other than the study's.
   */
  | 'REJECTION_REASON_INCONSISTENT_STATISTICS'
  | 12
  /**
   * Evaluation or training metrics are missing or impossible (see Metrics: loss not finite,
   * negative or above 1000000, accuracy or AUC outside [0, 1], num_examples not positive or
   * above the coordinator's limits.maxExamplesPerUpdate). Closes the task.
   */
  | 'REJECTION_REASON_INVALID_METRICS'
  | 13
  /**
   * num_examples is not a positive integer, exceeds the coordinator's limits.maxExamplesPerUpdate,
   * or exceeds the rows this clinic stated for the study's training split (its statistics
   * report, else StudyReadiness.training_rows; a suppressed report bounds nothing), or the
   * clinic stated none. Closes the task.
   */
  | 'REJECTION_REASON_BAD_EXAMPLE_COUNT'
  | 14
  /**
   * The task is closed: rejected with a closing reason, declined, failed, or cancelled (as the
   * open tasks of a round are when it closes). Nothing more is accepted for it. Does not change
   * the task. (A call for an accepted task is compared with what was accepted instead: OK
   * duplicate or DUPLICATE_CONFLICT; a call whose round moved on while the task is still
   * recorded open is STALE.)
   */
  | 'REJECTION_REASON_TASK_CLOSED'
  | 15
  /**
   * The uploader sent nothing for the coordinator's upload idle limit (transfer.uploadIdleSeconds,
   * default 120 s): the coordinator ended the call with DEADLINE_EXCEEDED. Does not close the
   * task: a new upload may pass while its round is open.
   */
  | 'REJECTION_REASON_UPLOAD_STALLED'
  | 16
  /**
   * The upload stream was cancelled or broke before the client ended it (the client cancelled,
   * or the connection was lost). Does not close the task.
   */
  | 'REJECTION_REASON_UPLOAD_CANCELLED'
  | 17

/**
 * Reasons recorded for a rejected contribution, also sent as trailing metadata
 * "fedlhs-rejection-reason" (the enum value name without the prefix, e.g. "STALE"), with
 * "fedlhs-task-open" (see "Errors and rejected contributions").
 * 
 * A closing reason ends the task REJECTED: nothing more is accepted for it (a later call gets
 * FAILED_PRECONDITION [TASK_CLOSED]), and the round goes on without it. Any other reason leaves
 * the task as it was: if it is still open, a corrected call may pass.
 * reason                    gRPC status           closes the task
 * UNKNOWN_TASK              NOT_FOUND             - (no such task)
 * NOT_ASSIGNED              PERMISSION_DENIED     no (not the caller's task)
 * STALE                     FAILED_PRECONDITION   no (the task may already be closed by its round)
 * DUPLICATE_CONFLICT        ALREADY_EXISTS        no (the accepted contribution stands)
 * REPLAYED                  ALREADY_EXISTS        yes
 * BAD_HEADER                INVALID_ARGUMENT      no (framing: resend it correctly)
 * SHAPE_MISMATCH            INVALID_ARGUMENT      yes
 * NON_FINITE                INVALID_ARGUMENT      yes
 * LENGTH_MISMATCH           DATA_LOSS             no (the client ended the stream short: resend)
 * DIGEST_MISMATCH           DATA_LOSS             no (transport: resend)
 * NORM_BOUND                INVALID_ARGUMENT      yes
 * INCONSISTENT_STATISTICS   INVALID_ARGUMENT      yes
 * INVALID_METRICS           INVALID_ARGUMENT      yes
 * BAD_EXAMPLE_COUNT         INVALID_ARGUMENT      yes
 * TASK_CLOSED               FAILED_PRECONDITION   - (already closed; unchanged)
 * UPLOAD_STALLED            DEADLINE_EXCEEDED     no (nothing sent for transfer.uploadIdleSeconds, or the client's deadline passed)
 * UPLOAD_CANCELLED          ABORTED               no (the client cancelled, or the connection broke)
 */
export type RejectionReason__Output = typeof RejectionReason[keyof typeof RejectionReason]
