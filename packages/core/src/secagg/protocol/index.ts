/**
 * The SecAgg+ protocol of one round as pure state machines (no I/O): `SecAggClient` for a
 * clinic, `SecAggServer` for the coordinator, and the JSON messages between them (wire.ts).
 */
export { SecAggClient, type MaskedInputResult, type SecAggClientOptions } from './client.js';
export { SecAggServer, type SecAggBlame, type SecAggServerOptions } from './server.js';
export * from './identity.js';
export { checkContext, graphSeed, resolveRound, type ResolvedRound, type RoundContext } from './context.js';
export * from './wire.js';
