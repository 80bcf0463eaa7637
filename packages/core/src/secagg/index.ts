/**
 * Secure aggregation primitives, SecAgg+ class (Bonawitz et al. 2017, "Practical Secure
 * Aggregation for Privacy-Preserving Machine Learning", CCS; Bell et al. 2020, "Secure
 * Single-Server Aggregation with (Poly)Logarithmic Overhead", CCS): Shamir sharing over
 * GF(2^521 − 1), X25519 → HKDF-SHA256 → AES-256-CTR masks mod 2^bits, fixed-point quantisation
 * with a modulus that cannot wrap, and ring / random k-regular neighbourhoods. Pure: Node's
 * crypto only, no I/O. The protocol stages over processes are built on these elsewhere.
 */
export * from './field.js';
export * from './shamir.js';
export * from './stream.js';
export * from './masks.js';
export * from './quantize.js';
export * from './graph.js';
export * from './pack.js';
export * from './protocol/index.js';
