// Original file: /work/main/proto/fedlhs/v1/common.proto

import type { DType as _fedlhs_v1_DType, DType__Output as _fedlhs_v1_DType__Output } from '../../fedlhs/v1/DType.js';

/**
 * Name, shape and element type of one tensor of a model.
 */
export interface TensorSpec {
  /**
   * Stable weight name, "<layer name>/<weight name>", e.g. "hidden/kernel". Unique within a
   * bundle. Receivers match tensors by position and check that names agree.
   */
  'name'?: (string);
  /**
   * Dimensions, outermost first. An empty list is a scalar (one element). Every dimension
   * is at least 1.
   */
  'shape'?: (number)[];
  'dtype'?: (_fedlhs_v1_DType);
}

/**
 * Name, shape and element type of one tensor of a model.
 */
export interface TensorSpec__Output {
  /**
   * Stable weight name, "<layer name>/<weight name>", e.g. "hidden/kernel". Unique within a
   * bundle. Receivers match tensors by position and check that names agree.
   */
  'name': (string);
  /**
   * Dimensions, outermost first. An empty list is a scalar (one element). Every dimension
   * is at least 1.
   */
  'shape': (number)[];
  'dtype': (_fedlhs_v1_DType__Output);
}
