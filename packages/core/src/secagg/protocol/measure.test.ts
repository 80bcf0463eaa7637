/**
 * Bytes on the wire per clinic and stage for a 100k-parameter vector (a measurement, not an
 * assertion): `SECAGG_MEASURE=1 npx vitest run --project unit packages/core/src/secagg/protocol/measure`.
 */
import { describe, it } from 'vitest';
import { SecAggClient, SecAggServer, createSecAggIdentity, type RoundContext } from './index.js';

const size = (m: unknown): number => Buffer.byteLength(JSON.stringify(m));

function measure(n: number, k: number, vectorLength: number): void {
  const ctx: RoundContext = { studyId: 'study-a', round: 1, attempt: 0, k, graph: 'random-regular', valueBits: 16, clipRange: 1, vectorLength };
  const cohort = Array.from({ length: n }, (_, i) => `clinic-${String(i).padStart(2, '0')}`);
  const clients = new Map(cohort.map((id) => [id, new SecAggClient(ctx, id, createSecAggIdentity())]));
  const server = new SecAggServer(ctx, cohort);
  // Per stage: keys, shares, masked input (JSON header + raw vector bytes, as StageReport carries them), consistency, unmask.
  const up = [0, 0, 0, 0, 0];
  const down = [0, 0, 0, 0, 0];
  let maskedRaw = 0;
  const started = performance.now();
  for (const [id, c] of clients) {
    const m = c.keys();
    up[0]! += size(m);
    server.receiveKeys(id, JSON.parse(JSON.stringify(m)));
  }
  for (const [id, r] of server.sharesRequests()) {
    down[1]! += size(r);
    const m = clients.get(id)!.shares(JSON.parse(JSON.stringify(r)));
    up[1]! += size(m);
    server.receiveShares(id, JSON.parse(JSON.stringify(m)));
  }
  const input = Float32Array.from({ length: vectorLength }, (_, i) => Math.sin(i) * 0.5);
  for (const [id, r] of server.maskedInputRequests()) {
    down[2]! += size(r);
    const { message, vector } = clients.get(id)!.maskedInput(JSON.parse(JSON.stringify(r)), input);
    up[2]! += size(message) + vector.length;
    maskedRaw += vector.length;
    server.receiveMaskedInput(id, JSON.parse(JSON.stringify(message)), vector);
  }
  for (const [id, r] of server.consistencyRequests()) {
    down[3]! += size(r);
    const m = clients.get(id)!.consistency(JSON.parse(JSON.stringify(r)));
    up[3]! += size(m);
    server.receiveConsistency(id, JSON.parse(JSON.stringify(m)));
  }
  for (const [id, r] of server.unmaskRequests()) {
    down[4]! += size(r);
    const m = clients.get(id)!.unmask(JSON.parse(JSON.stringify(r)));
    up[4]! += size(m);
    server.receiveUnmask(id, JSON.parse(JSON.stringify(m)));
  }
  server.finish();
  const ms = performance.now() - started;
  const per = (xs: number[]) => xs.map((x) => Math.round(x / n));
  const total = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / n;
  const plain = 4 * vectorLength;
  console.log(
    `n=${n} k=${k} len=${vectorLength}: up/client per stage ${JSON.stringify(per(up))} down ${JSON.stringify(per(down))}; ` +
      `up total ${Math.round(total(up))} B (${(total(up) / plain).toFixed(3)}x plain float32 ${plain} B); masked vector raw ${maskedRaw / n} B (${(maskedRaw / n / plain).toFixed(3)}x); ` +
      `up+down ${Math.round(total(up) + total(down))} B (${((total(up) + total(down)) / plain).toFixed(3)}x); protocol CPU ${Math.round(ms)} ms for all clinics in one process`,
  );
}

describe.skipIf(!process.env.SECAGG_MEASURE)('secagg bytes per clinic (measurement)', () => {
  it('n = 10 and 50, 100k parameters', () => {
    measure(10, 8, 100_000);
    measure(50, 10, 100_000);
    measure(50, 20, 100_000);
  }, 300_000);
});
