// Original file: /work/main/proto/fedlhs/v1/common.proto

/**
 * Element type of a tensor. Version 1 carries float32 only; any other value is rejected
 * with INVALID_ARGUMENT.
 */
export const DType = {
  DTYPE_UNSPECIFIED: 'DTYPE_UNSPECIFIED',
  DTYPE_FLOAT32: 'DTYPE_FLOAT32',
} as const;

/**
 * Element type of a tensor. Version 1 carries float32 only; any other value is rejected
 * with INVALID_ARGUMENT.
 */
export type DType =
  | 'DTYPE_UNSPECIFIED'
  | 0
  | 'DTYPE_FLOAT32'
  | 1

/**
 * Element type of a tensor. Version 1 carries float32 only; any other value is rejected
 * with INVALID_ARGUMENT.
 */
export type DType__Output = typeof DType[keyof typeof DType]
