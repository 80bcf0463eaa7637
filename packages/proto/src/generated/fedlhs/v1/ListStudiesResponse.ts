// Original file: /work/main/proto/fedlhs/v1/federation.proto

import type { Study as _fedlhs_v1_Study, Study__Output as _fedlhs_v1_Study__Output } from '../../fedlhs/v1/Study.js';

export interface ListStudiesResponse {
  'studies'?: (_fedlhs_v1_Study)[];
}

export interface ListStudiesResponse__Output {
  'studies': (_fedlhs_v1_Study__Output)[];
}
