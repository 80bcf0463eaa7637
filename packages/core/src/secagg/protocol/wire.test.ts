import { describe, expect, it } from 'vitest';
import { FedlhsError } from '../../errors.js';
import { SecAggClient, SecAggServer, keysMessageSchema, parseMessage, sharesMessageSchema, toBase64, type RoundContext } from './index.js';

function thrown(fn: () => unknown): FedlhsError {
  try {
    fn();
  } catch (err) {
    if (err instanceof FedlhsError) return err;
    throw err;
  }
  throw new Error('did not throw');
}

const ctx: RoundContext = { studyId: 'study-a', round: 4, attempt: 0, k: 4, graph: 'ring', valueBits: 16, clipRange: 1, vectorLength: 8 };
const header = { studyId: 'study-a', round: 4, attempt: 0 };
const key = toBase64(new Uint8Array(32).fill(9));
const ids = Array.from({ length: 6 }, (_, i) => `c${i}`);

describe('secagg wire', () => {
  it('refuses a key of the wrong size, non-canonical base64, unknown fields and a missing header, naming the field', () => {
    expect(parseMessage(keysMessageSchema, { ...header, cPublic: key, sPublic: key }, 'keys').cPublic).toBe(key);
    expect(thrown(() => parseMessage(keysMessageSchema, { ...header, cPublic: toBase64(new Uint8Array(31)), sPublic: key }, 'keys')).message).toMatchInlineSnapshot(`"keys.cPublic: must be base64 of 32 bytes"`);
    expect(thrown(() => parseMessage(keysMessageSchema, { ...header, cPublic: toBase64(new Uint8Array(33)), sPublic: key }, 'keys')).details).toEqual({ field: 'keys.cPublic' });
    // 44 characters, but the last one carries bits a canonical encoder leaves zero.
    const loose = key.slice(0, 42) + 'l=';
    expect(thrown(() => parseMessage(keysMessageSchema, { ...header, cPublic: key, sPublic: loose }, 'keys')).message).toMatchInlineSnapshot(`"keys.sPublic: not canonical base64"`);
    expect(thrown(() => parseMessage(keysMessageSchema, { ...header, cPublic: key, sPublic: key, note: 'x' }, 'keys')).details).toEqual({ field: 'keys' });
    expect(thrown(() => parseMessage(keysMessageSchema, { cPublic: key, sPublic: key }, 'keys')).details).toEqual({ field: 'keys.studyId' });
    expect(thrown(() => parseMessage(keysMessageSchema, null, 'keys')).details).toEqual({ field: 'keys' });
  });

  it('refuses a list naming one clinic twice, and an id that is empty or too long', () => {
    const ct = toBase64(new Uint8Array(166));
    const commitment = toBase64(new Uint8Array(32));
    expect(thrown(() => parseMessage(sharesMessageSchema, { ...header, shares: [{ to: 'a', ciphertext: ct }, { to: 'a', ciphertext: ct }], selfMaskCommitment: commitment }, 'shares')).message).toMatchInlineSnapshot(`"shares.shares[1].to: a appears twice"`);
    expect(thrown(() => parseMessage(sharesMessageSchema, { ...header, shares: [{ to: '', ciphertext: ct }], selfMaskCommitment: commitment }, 'shares')).details).toEqual({ field: 'shares.shares[0].to' });
    expect(thrown(() => parseMessage(sharesMessageSchema, { ...header, shares: [{ to: 'x'.repeat(129), ciphertext: ct }], selfMaskCommitment: commitment }, 'shares')).details).toEqual({ field: 'shares.shares[0].to' });
    expect(thrown(() => parseMessage(sharesMessageSchema, { ...header, shares: [{ to: 'a', ciphertext: toBase64(new Uint8Array(165)) }], selfMaskCommitment: commitment }, 'shares')).details).toEqual({ field: 'shares.shares[0].ciphertext' });
  });

  it('a client refuses a neighbour outside its graph, too few neighbours, an unsorted cohort and another round', () => {
    const server = new SecAggServer(ctx, ids);
    const clients = ids.map((id) => new SecAggClient(ctx, id));
    clients.forEach((c, i) => server.receiveKeys(ids[i]!, c.keys()));
    const requests = server.sharesRequests();
    const req = requests.get('c0')!;
    const outsider = ids.find((id) => id !== 'c0' && !req.neighbours.some((n) => n.id === id))!;
    const fresh = (): SecAggClient => {
      const c = new SecAggClient(ctx, 'c0');
      c.keys();
      return c;
    };
    expect(thrown(() => fresh().shares({ ...req, neighbours: [...req.neighbours.slice(1), { id: outsider, cPublic: key, sPublic: key }] })).message).toContain(`${outsider} is not a neighbour of c0`);
    const dup = req.neighbours.map((n, i) => (i === 1 ? { ...n, cPublic: req.neighbours[0]!.cPublic } : n));
    expect(thrown(() => fresh().shares({ ...req, neighbours: dup })).message).toContain(`the key given for ${req.neighbours[1]!.id} is used twice`);
    expect(thrown(() => fresh().shares({ ...req, neighbours: req.neighbours.slice(0, 2) })).message).toContain('2 neighbours cannot hold shares of threshold 3');
    expect(thrown(() => fresh().shares({ ...req, cohort: [...req.cohort].reverse() })).message).toContain('must be sorted');
    expect(thrown(() => fresh().shares({ ...req, round: 5 })).code).toBe('STALE');
    // A refused client takes no further part.
    const c = fresh();
    thrown(() => c.shares({ ...req, round: 5 }));
    expect(thrown(() => c.shares(req)).code).toBe('INVALID_STATE');
  });

  it('the server refuses shares not exactly for the neighbours given, and a changed resend; an identical resend is ignored', () => {
    const server = new SecAggServer(ctx, ids);
    const clients = ids.map((id) => new SecAggClient(ctx, id));
    clients.forEach((c, i) => server.receiveKeys(ids[i]!, c.keys()));
    expect(thrown(() => server.receiveKeys('c0', { ...header, cPublic: key, sPublic: key })).code).toBe('DUPLICATE_CONFLICT');
    const requests = server.sharesRequests();
    expect(thrown(() => server.receiveKeys('c0', { ...header, cPublic: key, sPublic: key })).code).toBe('STALE');
    const m = clients[0]!.shares(requests.get('c0')!);
    expect(thrown(() => server.receiveShares('c0', { ...m, shares: m.shares.slice(1) })).message).toContain('sent no shares for');
    server.receiveShares('c0', m);
    server.receiveShares('c0', JSON.parse(JSON.stringify(m)));
    expect(thrown(() => server.receiveShares('c0', { ...m, selfMaskCommitment: toBase64(new Uint8Array(32)) })).code).toBe('DUPLICATE_CONFLICT');
    expect(thrown(() => server.receiveShares('nobody', m)).code).toBe('NOT_ASSIGNED');
  });
});
