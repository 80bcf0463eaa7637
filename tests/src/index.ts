/** The multi-process harness the integration tests share lives in the simulator (it runs real networks too). */
export * from '@fedlhs/simulator';
export * from './rogue-node.js';
export * from './shifted-clock.js';
