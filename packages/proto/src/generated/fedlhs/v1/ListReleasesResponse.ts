// Original file: /work/main/proto/fedlhs/v1/federation.proto

import type { Release as _fedlhs_v1_Release, Release__Output as _fedlhs_v1_Release__Output } from '../../fedlhs/v1/Release.js';

export interface ListReleasesResponse {
  'releases'?: (_fedlhs_v1_Release)[];
}

export interface ListReleasesResponse__Output {
  'releases': (_fedlhs_v1_Release__Output)[];
}
