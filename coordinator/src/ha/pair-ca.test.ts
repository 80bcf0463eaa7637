import { cpSync, existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Logger } from '@fedlhs/service';
import { CertificateAuthority } from '../ca/authority.js';
import { SqliteStore } from '../sqlite-store.js';
import { checkPairCa, openPairNodeCertificates } from './pair-ca.js';
import { resetPairCa } from './pair-ca-reset.js';
import { auditSourceOf } from '../audit/sources.js';
import { verifyAuditChain } from '../audit/verify.js';
import type { OpenedStore } from '../store/contract/kind.js';
import { postgresKind } from '../store/postgres/store-kind.js';
import type { PostgresStore } from '../store/postgres/postgres-store.js';

const stores: SqliteStore[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
});

const logger = (): Logger & { info: ReturnType<typeof vi.fn> } => {
  const l = { info: vi.fn(), warn: vi.fn(), error: vi.fn(), debug: vi.fn(), child: () => l };
  return l as unknown as Logger & { info: ReturnType<typeof vi.fn> };
};
const config = (dataDir: string) => ({ dataDir, tls: { mode: 'tls' as const, cert: '', key: '', clientCa: '', clientCertificates: 'issued' as const, nodeCertificateSeconds: 3600, caValidityDays: 365, supersededGraceSeconds: 60 } });
const dir = (): string => mkdtempSync(join(tmpdir(), 'pair-ca-'));
function store(): SqliteStore {
  const s = new SqliteStore(join(dir(), 'coordinator.db'));
  stores.push(s);
  return s;
}

describe('the node CA of an active/standby pair', () => {
  it('the first coordinator makes and records it; the second, with the copied files, uses the same CA', async () => {
    const db = store();
    const a = dir();
    const log = logger();
    const first = await openPairNodeCertificates(config(a), db, log);
    expect(first?.created).toBe(true);
    expect(log.info).toHaveBeenCalledWith(expect.objectContaining({ event: 'ca.created' }), expect.stringContaining('copy both files'));
    expect((await db.getNodeCa())?.fingerprint).toBe(first!.authority.fingerprint);
    const b = dir();
    cpSync(join(a, 'ca'), join(b, 'ca'), { recursive: true });
    const second = await openPairNodeCertificates(config(b), db, logger());
    expect(second?.created).toBe(false);
    expect(second!.authority.fingerprint).toBe(first!.authority.fingerprint);
    await expect(checkPairCa(db, second!)).resolves.toBeUndefined();
  });

  it('refuses a coordinator without the CA files once the pair has a CA, and makes none', async () => {
    const db = store();
    await openPairNodeCertificates(config(dir()), db, logger());
    const b = dir();
    await expect(openPairNodeCertificates(config(b), db, logger())).rejects.toThrow(/holds no node CA, but the pair's node CA \(fingerprint [0-9A-F:]+, recorded .*\) exists: copy ca\.key \(mode 0600\) and ca\.crt/);
    expect(existsSync(join(b, 'ca'))).toBe(false);
  });

  it('refuses a coordinator with another CA than the one recorded', async () => {
    const db = store();
    await openPairNodeCertificates(config(dir()), db, logger());
    const b = dir();
    CertificateAuthority.open({ dataDir: b, caValidityDays: 365, nodeCertificateSeconds: 3600, now: Date.now });
    await expect(openPairNodeCertificates(config(b), db, logger())).rejects.toThrow(/the node CA in .* \(fingerprint [0-9A-F:]+\) is not the pair's \(fingerprint [0-9A-F:]+, recorded/);
  });

  it('records CA files provisioned before the first start as the pair\'s', async () => {
    const db = store();
    const a = dir();
    const { ca } = CertificateAuthority.open({ dataDir: a, caValidityDays: 365, nodeCertificateSeconds: 3600, now: Date.now });
    const log = logger();
    const opened = await openPairNodeCertificates(config(a), db, log);
    expect(opened?.authority.fingerprint).toBe(ca.fingerprint);
    expect(log.info).toHaveBeenCalledWith(expect.objectContaining({ event: 'ca.recorded', fingerprint: ca.fingerprint }), expect.any(String));
    expect((await db.getNodeCa())?.fingerprint).toBe(ca.fingerprint);
  });

  it('two coordinators starting at once: the one whose CA was not recorded is refused and writes no files', async () => {
    const db = store();
    const winner = CertificateAuthority.generate({ dataDir: '', caValidityDays: 365, nodeCertificateSeconds: 3600, now: Date.now }).ca;
    // The other coordinator records its CA between this one's read and its own record.
    const racing = { getNodeCa: async () => undefined, recordNodeCa: async () => db.recordNodeCa({ fingerprint: winner.fingerprint, certificatePem: winner.certificatePem, recordedAt: 1 }) };
    const b = dir();
    await expect(openPairNodeCertificates(config(b), racing, logger())).rejects.toThrow(/the other coordinator made the pair's node CA \(fingerprint [0-9A-F:]+\) while this one started/);
    expect(existsSync(join(b, 'ca'))).toBe(false);
  });

  it('does not take over on a database that records another CA', async () => {
    const opened = await openPairNodeCertificates(config(dir()), store(), logger());
    const other = store();
    await openPairNodeCertificates(config(dir()), other, logger());
    await expect(checkPairCa(other, opened!)).rejects.toThrow(/the database records node CA [0-9A-F:]+, but this coordinator's is [0-9A-F:]+: it does not take over/);
  });

  it("is nothing with tls.clientCertificates 'external'", async () => {
    expect(await openPairNodeCertificates({ ...config(dir()), tls: { ...config('').tls, clientCertificates: 'external' } }, store(), logger())).toBeUndefined();
  });

  it('writes the CA files before recording it: a failed write records nothing, a failed record keeps the files', async () => {
    const db = store();
    const a = dir();
    // <dataDir>/ca cannot be made (a file is in the way).
    writeFileSync(join(a, 'ca'), '');
    await expect(openPairNodeCertificates(config(a), db, logger())).rejects.toThrow();
    expect(await db.getNodeCa()).toBeUndefined();
    // The record fails (the database went away at COMMIT): the key stays, and the next start records it.
    const b = dir();
    const failing = { getNodeCa: async () => undefined, recordNodeCa: async () => Promise.reject(new Error('connection lost')) };
    await expect(openPairNodeCertificates(config(b), failing, logger())).rejects.toThrow('connection lost');
    expect(existsSync(join(b, 'ca', 'ca.key'))).toBe(true);
    const again = await openPairNodeCertificates(config(b), db, logger());
    expect((await db.getNodeCa())?.fingerprint).toBe(again!.authority.fingerprint);
  });
});

describe('ca reset (PostgreSQL)', () => {
  const opened: OpenedStore[] = [];
  afterEach(async () => {
    for (const o of opened.splice(0)) await o.cleanup();
  });

  it('retires the confirmed CA on each machine (audited), after which a new CA is made; refuses another CA', async () => {
    const o = await postgresKind.open();
    opened.push(o);
    const db = o.store as PostgresStore;
    const a = dir();
    const first = await openPairNodeCertificates(config(a), db, logger());
    const fp = first!.authority.fingerprint;
    const b = dir();
    cpSync(join(a, 'ca'), join(b, 'ca'), { recursive: true });
    const reset = (dataDir: string, confirm: string, dryRun = false) => resetPairCa({ dataDir, confirm, operator: 'cli:test', pool: db.pool, dryRun });

    expect(await reset(a, '', true)).toMatchObject({ recorded: { fingerprint: fp }, cleared: false, local: fp, movedTo: undefined });
    const other = CertificateAuthority.generate({ dataDir: '', caValidityDays: 365, nodeCertificateSeconds: 3600, now: Date.now }).ca.fingerprint;
    await expect(reset(a, other)).rejects.toThrow(`holds node CA ${fp}, not the confirmed ${other}: nothing was changed`);
    expect((await db.getNodeCa())?.fingerprint).toBe(fp);

    // Case and colons do not matter.
    const done = await reset(a, fp.replace(/:/g, '').toLowerCase());
    expect(done).toMatchObject({ cleared: true, local: fp, movedTo: expect.stringContaining(join(a, 'ca.retired-')) });
    expect(existsSync(join(a, 'ca'))).toBe(false);
    expect(existsSync(join(done.movedTo!, 'ca.key'))).toBe(true);
    expect(await db.getNodeCa()).toBeUndefined();
    expect((await db.listAdminActions(1))[0]).toMatchObject({ operator: 'cli:test', action: 'ca.reset', target: fp });
    const source = auditSourceOf(db);
    expect((await verifyAuditChain(source)).ok).toBe(true);

    // The other machine: the record is gone already, its files are moved.
    expect(await reset(b, fp)).toMatchObject({ cleared: false, movedTo: expect.any(String) });
    // The first coordinator to start makes a new CA; repeating the reset does not retire it.
    const renewed = await openPairNodeCertificates(config(a), db, logger());
    expect(renewed?.created).toBe(true);
    expect(renewed!.authority.fingerprint).not.toBe(fp);
    await expect(reset(a, fp)).rejects.toThrow(/not the confirmed/);
    await expect(reset(b, fp)).rejects.toThrow(`the database records node CA ${renewed!.authority.fingerprint} and ${join(b, 'ca')} holds none: nothing to reset`);
    expect((await db.getNodeCa())?.fingerprint).toBe(renewed!.authority.fingerprint);
  });

  it('recovers a pair whose recorded CA key exists nowhere', async () => {
    const o = await postgresKind.open();
    opened.push(o);
    const db = o.store as PostgresStore;
    const lost = CertificateAuthority.generate({ dataDir: '', caValidityDays: 365, nodeCertificateSeconds: 3600, now: Date.now }).ca;
    await db.recordNodeCa({ fingerprint: lost.fingerprint, certificatePem: lost.certificatePem, recordedAt: 1 });
    const a = dir();
    await expect(openPairNodeCertificates(config(a), db, logger())).rejects.toThrow(`run \`fedlhs-coordinator ca reset --config <file> --confirm ${lost.fingerprint}\``);
    expect(await resetPairCa({ dataDir: a, confirm: lost.fingerprint, operator: 'cli:test', pool: db.pool })).toMatchObject({ cleared: true, local: undefined, movedTo: undefined });
    expect((await openPairNodeCertificates(config(a), db, logger()))?.created).toBe(true);
  });
});
