// Original file: /work/main/proto/fedlhs/v1/common.proto

import type { DType as _fedlhs_v1_DType, DType__Output as _fedlhs_v1_DType__Output } from '../../fedlhs/v1/DType.js';

/**
 * Name, shape and element type of one tensor of a model.
 * 
 * A study's model is a TF.js/Keras Sequential topology (Study.manifest_json). Its tensors, as
 * DownloadModel's header lists them (that list is authoritative; an update echoes it):
 * - Names: "<layer name>/<weight name>", e.g. "hidden/kernel". A layer without a "name" in the
 * topology (absent or "") at index i of config.layers (0-based, every layer counted, also
 * those without weights) is named snake(class_name) + "_" + i, where snake inserts "_"
 * between a lowercase letter or digit and a following uppercase-then-lowercase pair, then
 * lowercases: Dense at 0 → "dense_0", BatchNormalization at 2 → "batch_normalization_2",
 * Conv1D at 3 → "conv1d_3", LayerNormalization → "layer_normalization_<i>"
 * (JavaScript: class_name.replace(/([a-z0-9])([A-Z][a-z])/g, '$1_$2').toLowerCase()).
 * Weight names: Dense and Conv1D "kernel", "bias"; BatchNormalization "gamma", "beta",
 * "moving_mean", "moving_variance"; LayerNormalization "gamma", "beta" (a weight switched
 * off in the layer's config, e.g. use_bias false or scale false, is absent).
 * - Order: first every trainable weight, layers in topology order and, within a layer, in the
 * order above; then every non-trainable weight (BatchNormalization's moving_mean and
 * moving_variance), again layers in topology order. (This is TF.js's model.weights order.)
 * E.g. Dense, BatchNormalization, Dense: dense_0/kernel, dense_0/bias,
 * batch_normalization_1/gamma, batch_normalization_1/beta, dense_2/kernel, dense_2/bias,
 * batch_normalization_1/moving_mean, batch_normalization_1/moving_variance.
 * - Orientation, row-major like every tensor here: a Dense kernel is [in, units] with
 * y = x·K + b (K[i][j] at i * units + j); a Conv1D kernel is [kernel_size, in_channels,
 * filters]; gamma, beta, moving statistics and biases are [units] or [channels].
 * BatchNormalization at inference: (x - moving_mean) / sqrt(moving_variance + epsilon) * gamma
 * + beta, epsilon from the layer config (default 0.001).
 * Test: packages/model/src/wire-layout.test.ts computes a forward pass from this text alone.
 */
export interface TensorSpec {
  /**
   * Stable weight name, "<layer name>/<weight name>", e.g. "hidden/kernel" (see above).
   * Unique within a bundle. Receivers match tensors by position and check that names agree.
   * Sent by a node (in an update): text, 1 to 256 characters.
   */
  'name'?: (string);
  /**
   * Dimensions, outermost first. An empty list is a scalar (one element). Every dimension
   * is at least 1. At most 8 dimensions in an update.
   */
  'shape'?: (number)[];
  'dtype'?: (_fedlhs_v1_DType);
}

/**
 * Name, shape and element type of one tensor of a model.
 * 
 * A study's model is a TF.js/Keras Sequential topology (Study.manifest_json). Its tensors, as
 * DownloadModel's header lists them (that list is authoritative; an update echoes it):
 * - Names: "<layer name>/<weight name>", e.g. "hidden/kernel". A layer without a "name" in the
 * topology (absent or "") at index i of config.layers (0-based, every layer counted, also
 * those without weights) is named snake(class_name) + "_" + i, where snake inserts "_"
 * between a lowercase letter or digit and a following uppercase-then-lowercase pair, then
 * lowercases: Dense at 0 → "dense_0", BatchNormalization at 2 → "batch_normalization_2",
 * Conv1D at 3 → "conv1d_3", LayerNormalization → "layer_normalization_<i>"
 * (JavaScript: class_name.replace(/([a-z0-9])([A-Z][a-z])/g, '$1_$2').toLowerCase()).
 * Weight names: Dense and Conv1D "kernel", "bias"; BatchNormalization "gamma", "beta",
 * "moving_mean", "moving_variance"; LayerNormalization "gamma", "beta" (a weight switched
 * off in the layer's config, e.g. use_bias false or scale false, is absent).
 * - Order: first every trainable weight, layers in topology order and, within a layer, in the
 * order above; then every non-trainable weight (BatchNormalization's moving_mean and
 * moving_variance), again layers in topology order. (This is TF.js's model.weights order.)
 * E.g. Dense, BatchNormalization, Dense: dense_0/kernel, dense_0/bias,
 * batch_normalization_1/gamma, batch_normalization_1/beta, dense_2/kernel, dense_2/bias,
 * batch_normalization_1/moving_mean, batch_normalization_1/moving_variance.
 * - Orientation, row-major like every tensor here: a Dense kernel is [in, units] with
 * y = x·K + b (K[i][j] at i * units + j); a Conv1D kernel is [kernel_size, in_channels,
 * filters]; gamma, beta, moving statistics and biases are [units] or [channels].
 * BatchNormalization at inference: (x - moving_mean) / sqrt(moving_variance + epsilon) * gamma
 * + beta, epsilon from the layer config (default 0.001).
 * Test: packages/model/src/wire-layout.test.ts computes a forward pass from this text alone.
 */
export interface TensorSpec__Output {
  /**
   * Stable weight name, "<layer name>/<weight name>", e.g. "hidden/kernel" (see above).
   * Unique within a bundle. Receivers match tensors by position and check that names agree.
   * Sent by a node (in an update): text, 1 to 256 characters.
   */
  'name': (string);
  /**
   * Dimensions, outermost first. An empty list is a scalar (one element). Every dimension
   * is at least 1. At most 8 dimensions in an update.
   */
  'shape': (number)[];
  'dtype': (_fedlhs_v1_DType__Output);
}
