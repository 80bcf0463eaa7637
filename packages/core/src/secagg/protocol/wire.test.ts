import { describe, expect, it } from 'vitest';
import { SecAggClient, SecAggServer, consistencyRequestSchema, createSecAggIdentity, keysMessageSchema, parseMessage, sharesMessageSchema, toBase64, unmaskRequestSchema, type RoundContext } from './index.js';
import { thrown } from '../test-support.js';


const ctx: RoundContext = { studyId: 'study-a', round: 4, attempt: 0, k: 4, graph: 'ring', valueBits: 16, clipRange: 1, vectorLength: 8 };
const header = { studyId: 'study-a', round: 4, attempt: 0 };
const key = toBase64(new Uint8Array(32).fill(9));
const ids = Array.from({ length: 6 }, (_, i) => `c${i}`);
const identityKey = toBase64(new Uint8Array(32).fill(3));
const signature = toBase64(new Uint8Array(64).fill(4));
const keys = { ...header, cPublic: key, sPublic: key, identityKey, signature };
const identities = new Map(ids.map((id) => [id, createSecAggIdentity()]));
const client = (id: string) => new SecAggClient(ctx, id, identities.get(id)!);

describe('secagg wire', () => {
  it('refuses a key of the wrong size, non-canonical base64, unknown fields and a missing header, naming the field', () => {
    expect(parseMessage(keysMessageSchema, keys, 'keys').cPublic).toBe(key);
    expect(thrown(() => parseMessage(keysMessageSchema, { ...keys, cPublic: toBase64(new Uint8Array(31)) }, 'keys')).message).toMatchInlineSnapshot(`"keys.cPublic: must be base64 of 32 bytes"`);
    expect(thrown(() => parseMessage(keysMessageSchema, { ...keys, cPublic: toBase64(new Uint8Array(33)) }, 'keys')).details).toEqual({ field: 'keys.cPublic' });
    expect(thrown(() => parseMessage(keysMessageSchema, { ...keys, identityKey: toBase64(new Uint8Array(33)) }, 'keys')).details).toEqual({ field: 'keys.identityKey' });
    expect(thrown(() => parseMessage(keysMessageSchema, { ...keys, signature: toBase64(new Uint8Array(63)) }, 'keys')).message).toMatchInlineSnapshot(`"keys.signature: must be base64 of 64 bytes"`);
    const { signature: _s, ...unsigned } = keys;
    expect(thrown(() => parseMessage(keysMessageSchema, unsigned, 'keys')).details).toEqual({ field: 'keys.signature' });
    // 44 characters, but the last one carries bits a canonical encoder leaves zero.
    const loose = key.slice(0, 42) + 'l=';
    expect(thrown(() => parseMessage(keysMessageSchema, { ...keys, sPublic: loose }, 'keys')).message).toMatchInlineSnapshot(`"keys.sPublic: not canonical base64"`);
    expect(thrown(() => parseMessage(keysMessageSchema, { ...keys, note: 'x' }, 'keys')).details).toEqual({ field: 'keys' });
    expect(thrown(() => parseMessage(keysMessageSchema, { cPublic: key, sPublic: key, identityKey, signature }, 'keys')).details).toEqual({ field: 'keys.studyId' });
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

  it('refuses an unsorted or too small survivor set, and unmask signatures naming one clinic twice', () => {
    expect(thrown(() => parseMessage(consistencyRequestSchema, { ...header, survivors: ['b', 'a'] }, 'consistencyRequest')).message).toMatchInlineSnapshot(`"consistencyRequest.survivors[1]: must be sorted"`);
    expect(thrown(() => parseMessage(consistencyRequestSchema, { ...header, survivors: ['a'] }, 'consistencyRequest')).details).toEqual({ field: 'consistencyRequest.survivors' });
    expect(thrown(() => parseMessage(consistencyRequestSchema, { ...header, survivors: ['a', 'a'] }, 'consistencyRequest')).details).toEqual({ field: 'consistencyRequest.survivors[1]' });
    const sig = { id: 'a', signature };
    expect(thrown(() => parseMessage(unmaskRequestSchema, { ...header, survivors: ['a', 'b'], signatures: [sig, sig] }, 'unmaskRequest')).message).toMatchInlineSnapshot(`"unmaskRequest.signatures[1].id: a appears twice"`);
    expect(thrown(() => parseMessage(unmaskRequestSchema, { ...header, survivors: ['a', 'b'], survived: [], signatures: [] }, 'unmaskRequest')).details).toEqual({ field: 'unmaskRequest' });
  });

  it('a client refuses a neighbour outside its graph, too few neighbours, an unsorted cohort and another round', () => {
    const server = new SecAggServer(ctx, ids);
    const clients = ids.map((id) => client(id));
    clients.forEach((c, i) => server.receiveKeys(ids[i]!, c.keys()));
    const requests = server.sharesRequests();
    const req = requests.get('c0')!;
    const outsider = ids.find((id) => id !== 'c0' && !req.neighbours.some((n) => n.id === id))!;
    const fresh = (): SecAggClient => {
      const c = client('c0');
      c.keys();
      return c;
    };
    expect(thrown(() => fresh().shares({ ...req, neighbours: [...req.neighbours.slice(1), { id: outsider, cPublic: key, sPublic: key, identityKey, signature }] })).message).toContain(`${outsider} is not a neighbour of c0`);
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
    const clients = ids.map((id) => client(id));
    clients.forEach((c, i) => server.receiveKeys(ids[i]!, c.keys()));
    // Another validly signed set of keys for c0: a changed resend.
    expect(thrown(() => server.receiveKeys('c0', client('c0').keys())).code).toBe('DUPLICATE_CONFLICT');
    const requests = server.sharesRequests();
    expect(thrown(() => server.receiveKeys('c0', keys)).code).toBe('STALE');
    const m = clients[0]!.shares(requests.get('c0')!);
    expect(thrown(() => server.receiveShares('c0', { ...m, shares: m.shares.slice(1) })).message).toContain('sent no shares for');
    server.receiveShares('c0', m);
    server.receiveShares('c0', JSON.parse(JSON.stringify(m)));
    expect(thrown(() => server.receiveShares('c0', { ...m, selfMaskCommitment: toBase64(new Uint8Array(32)) })).code).toBe('DUPLICATE_CONFLICT');
    expect(thrown(() => server.receiveShares('nobody', m)).code).toBe('NOT_ASSIGNED');
  });
});
