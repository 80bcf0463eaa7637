// Original file: /work/main/proto/fedlhs/v1/federation.proto

import type { ReleaseFile as _fedlhs_v1_ReleaseFile, ReleaseFile__Output as _fedlhs_v1_ReleaseFile__Output } from '../../fedlhs/v1/ReleaseFile.js';
import type { Long } from '@grpc/proto-loader';

export interface Release {
  /**
   * The manifest's name; versions count from 1 per name, across studies of that name.
   */
  'studyName'?: (string);
  'version'?: (number);
  'studyId'?: (string);
  /**
   * The committed round released.
   */
  'round'?: (number);
  'manifestSha256'?: (string);
  /**
   * The DSSE envelope, JSON in UTF-8: the only thing that vouches for the files.
   */
  'envelope'?: (Buffer | Uint8Array | string);
  /**
   * Files of the bundle (unsigned convenience copy of the Statement's subjects, plus sizes).
   */
  'files'?: (_fedlhs_v1_ReleaseFile)[];
  /**
   * Names the operators gave this version ("champion", "challenger", ...). Not signed: an
   * alias says what the hospital recommends, the signature what the file is.
   */
  'aliases'?: (string)[];
  /**
   * Milliseconds since the Unix epoch.
   */
  'createdAtMs'?: (number | string | Long);
}

export interface Release__Output {
  /**
   * The manifest's name; versions count from 1 per name, across studies of that name.
   */
  'studyName': (string);
  'version': (number);
  'studyId': (string);
  /**
   * The committed round released.
   */
  'round': (number);
  'manifestSha256': (string);
  /**
   * The DSSE envelope, JSON in UTF-8: the only thing that vouches for the files.
   */
  'envelope': (Buffer);
  /**
   * Files of the bundle (unsigned convenience copy of the Statement's subjects, plus sizes).
   */
  'files': (_fedlhs_v1_ReleaseFile__Output)[];
  /**
   * Names the operators gave this version ("champion", "challenger", ...). Not signed: an
   * alias says what the hospital recommends, the signature what the file is.
   */
  'aliases': (string)[];
  /**
   * Milliseconds since the Unix epoch.
   */
  'createdAtMs': (number);
}
