// Original file: /work/main/proto/fedlhs/v1/federation.proto

import type { StudyState as _fedlhs_v1_StudyState, StudyState__Output as _fedlhs_v1_StudyState__Output } from '../../fedlhs/v1/StudyState.js';

export interface Study {
  'studyId'?: (string);
  /**
   * The study manifest as canonical JSON (RFC 8785). It is data only: a TF.js layers model
   * topology, hyperparameters, the feature spec name, rounds, quorum and deadlines. No code.
   * Its schema is in the fedlhs README ("Study manifest").
   */
  'manifestJson'?: (string);
  /**
   * Lowercase hex SHA-256 of manifest_json's UTF-8 bytes: the hash a clinic operator approves.
   */
  'manifestSha256'?: (string);
  'state'?: (_fedlhs_v1_StudyState);
  /**
   * Last round whose global model was committed (0 = only the initial model exists).
   */
  'lastCommittedRound'?: (number);
  /**
   * Study parameters derived during the study (see Task.parameters_json); empty until then.
   */
  'parametersJson'?: (string);
  /**
   * A run of a study series (manifest field "series"): the series template the run was derived
   * from, as canonical JSON (RFC 8785), and the lowercase hex SHA-256 of its UTF-8 bytes (which
   * equals the manifest's series.templateSha256). Empty for a study that is not a series run.
   * See "Study series".
   */
  'seriesTemplateJson'?: (string);
  'seriesTemplateSha256'?: (string);
}

export interface Study__Output {
  'studyId': (string);
  /**
   * The study manifest as canonical JSON (RFC 8785). It is data only: a TF.js layers model
   * topology, hyperparameters, the feature spec name, rounds, quorum and deadlines. No code.
   * Its schema is in the fedlhs README ("Study manifest").
   */
  'manifestJson': (string);
  /**
   * Lowercase hex SHA-256 of manifest_json's UTF-8 bytes: the hash a clinic operator approves.
   */
  'manifestSha256': (string);
  'state': (_fedlhs_v1_StudyState__Output);
  /**
   * Last round whose global model was committed (0 = only the initial model exists).
   */
  'lastCommittedRound': (number);
  /**
   * Study parameters derived during the study (see Task.parameters_json); empty until then.
   */
  'parametersJson': (string);
  /**
   * A run of a study series (manifest field "series"): the series template the run was derived
   * from, as canonical JSON (RFC 8785), and the lowercase hex SHA-256 of its UTF-8 bytes (which
   * equals the manifest's series.templateSha256). Empty for a study that is not a series run.
   * See "Study series".
   */
  'seriesTemplateJson': (string);
  'seriesTemplateSha256': (string);
}
