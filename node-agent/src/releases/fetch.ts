import { createPublicKey, randomBytes, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { FedlhsError, RELEASE_FILES, sha256Hex, checkReleaseFile, verifyRelease, verifyReleaseStatement, type ReleaseFileName, type ReleaseFiles } from '@fedlhs/core';
import type { FederationClient } from '@fedlhs/proto';
import { writeFileAtomic, type Logger } from '@fedlhs/service';
import type { AgentState } from '../agent-state.js';
import { authMetadata, deadlineIn } from '../connection.js';
import type { PinnedReleaseKey } from '../release-pin.js';
import { isApproved } from '../series-approval.js';
import { STUDY_NAME, keptDir, keptRecordSchema, releasesRoot, type KeptRecord } from './local-releases.js';

/** Largest file of a release the agent downloads, whatever its declared size (a model of 256 Mi float32 values). */
export const MAX_RELEASE_FILE_BYTES = 1024 * 1024 * 1024;

const sha256 = sha256Hex;

/** A release as ListReleases lists it (proto Release; @fedlhs/proto does not export the message types). */
export interface ListedRelease {
  studyName: string;
  version: number;
  studyId: string;
  round: number;
  manifestSha256: string;
  envelope: Buffer;
  files: { name: string; sha256: string; size: number }[];
  aliases: string[];
  createdAtMs: number;
}
type Release__Output = ListedRelease;
type ListReleasesResponse__Output = { releases: ListedRelease[] };
type ReleaseFileChunk__Output = { data: Buffer };

/** What the fetcher needs: only the federation client's release RPCs are used. */
export interface ReleaseFetcherOptions {
  stateDir: string;
  state: AgentState;
  client: Pick<FederationClient, 'ListReleases' | 'DownloadReleaseFile'>;
  /** The node credential (bearer). */
  credential: string;
  /** The key pinned at enrolment; absent: every release is refused (re-enrol). */
  releaseKey: PinnedReleaseKey | undefined;
  coordinator: string;
  log: Logger;
  /** Per-file download timeout (ms). */
  timeoutMs?: number;
}

/** One check's outcome, for logs and tests. */
export interface FetchSummary {
  listed: number;
  kept: { studyName: string; version: number }[];
  refused: { studyName: string; version: number; why: string; reason: string }[];
  /** The releases listed this time (with their aliases), for the auto-deploy policy. */
  releases: Release__Output[];
}

/** A release refused: why (core's SIGNATURE_INVALID details.why) and the reason in words. */
class Refusal extends Error {
  constructor(readonly why: string, message: string, readonly file?: string) {
    super(message);
  }
}

const asRefusal = (err: unknown): Refusal | undefined => {
  if (err instanceof Refusal) return err;
  if (err instanceof FedlhsError && err.code === 'SIGNATURE_INVALID') {
    const d = err.details as { why?: unknown; file?: unknown } | undefined;
    return new Refusal(typeof d?.why === 'string' ? d.why : 'signature', err.message, typeof d?.file === 'string' ? d.file : undefined);
  }
  return undefined;
};

/**
 * Fetches the releases of studies this clinic's operator approved and keeps the ones that
 * verify (federation.proto "Releases"): the envelope against the pinned key first, then each
 * file as it arrives (size capped at its declared size, digest against the signed subject),
 * then the whole; only then is the release written, to a temp directory renamed into place,
 * so that a half-fetched release is never visible. Anything else is refused, logged and
 * audited, and not tried again for the same envelope until the agent restarts.
 */
export class ReleaseFetcher {
  /** Envelope digests refused in this process. */
  private readonly refusedEnvelopes = new Set<string>();
  private running: Promise<FetchSummary> | undefined;
  private again = false;
  private unimplementedSaid = false;

  constructor(private readonly options: ReleaseFetcherOptions) {}

  /** Runs a check now, or once more after the one running (calls while one runs coalesce). */
  check(): Promise<FetchSummary> {
    if (this.running !== undefined) {
      this.again = true;
      return this.running;
    }
    const run = async (): Promise<FetchSummary> => {
      let summary: FetchSummary;
      do {
        this.again = false;
        summary = await this.checkOnce();
      } while (this.again);
      return summary;
    };
    this.running = run().finally(() => (this.running = undefined));
    return this.running;
  }

  private async checkOnce(): Promise<FetchSummary> {
    const { log } = this.options;
    const summary: FetchSummary = { listed: 0, kept: [], refused: [], releases: [] };
    let res: ListReleasesResponse__Output;
    try {
      res = await new Promise<ListReleasesResponse__Output>((resolve, reject) => {
        this.options.client.ListReleases({ studyName: '' }, authMetadata(this.options.credential), { deadline: deadlineIn(15_000) }, (err, r) => (err === null ? resolve(r!) : reject(err)));
      });
    } catch (err) {
      const code = (err as { code?: number }).code;
      if (code === grpc.status.UNIMPLEMENTED) {
        if (!this.unimplementedSaid) log.warn({ event: 'release.unsupported' }, 'the coordinator does not serve releases (an older coordinator): no releases will be fetched');
        this.unimplementedSaid = true;
      } else {
        log.warn({ event: 'release.list_failed', err: (err as Error).message }, 'could not list releases; trying again later');
      }
      return summary;
    }
    summary.listed = res.releases.length;
    // Listings that contradict a kept release are left out: the auto policy must not act on their aliases.
    const contradicting = new Set<Release__Output>();
    for (const release of res.releases) {
      if (!STUDY_NAME.test(release.studyName) || !Number.isInteger(release.version) || release.version < 1) {
        log.warn({ event: 'release.invalid_listing', studyName: release.studyName.slice(0, 64), version: release.version }, 'the coordinator listed a release with an invalid study name or version; ignored');
        continue;
      }
      if (!isApproved(this.options.state, release.manifestSha256)) continue;
      const dir = keptDir(this.options.stateDir, release.studyName, release.version);
      const envelopeSha256 = sha256(release.envelope);
      if (existsSync(join(dir, 'kept.json'))) {
        const keptSha256 = this.keptEnvelopeSha256(dir);
        if (keptSha256 === undefined || keptSha256 === envelopeSha256) {
          this.updateAliases(dir, release.aliases);
          continue;
        }
        // Another envelope under a name and version kept here (e.g. a coordinator whose
        // database was reset): the kept bytes stay, the new ones are refused, loudly.
        contradicting.add(release);
        if (this.refusedEnvelopes.has(envelopeSha256)) continue;
        this.refusedEnvelopes.add(envelopeSha256);
        const refusal = new Refusal('predicate', `the coordinator lists release ${release.studyName} v${release.version} with envelope SHA-256 ${envelopeSha256}, but the release kept here under that name and version has envelope SHA-256 ${keptSha256}; a name and version names one release only, so the listed one is refused and the kept one stays (ask the coordinator's operators why it changed)`);
        summary.refused.push({ studyName: release.studyName, version: release.version, why: refusal.why, reason: refusal.message });
        this.recordRefusal(release, envelopeSha256, refusal);
        continue;
      }
      if (this.refusedEnvelopes.has(envelopeSha256)) continue;
      try {
        await this.fetchOne(release, envelopeSha256, dir);
        summary.kept.push({ studyName: release.studyName, version: release.version });
      } catch (err) {
        const refusal = asRefusal(err);
        if (refusal === undefined) {
          // The network or the coordinator failed, not the release: try again at the next check.
          log.warn({ event: 'release.fetch_failed', studyName: release.studyName, version: release.version, err: (err as Error).message }, `could not fetch release ${release.studyName} v${release.version}; trying again later`);
          continue;
        }
        this.refusedEnvelopes.add(envelopeSha256);
        summary.refused.push({ studyName: release.studyName, version: release.version, why: refusal.why, reason: refusal.message });
        this.recordRefusal(release, envelopeSha256, refusal);
      }
    }
    summary.releases = res.releases.filter((r) => !contradicting.has(r));
    return summary;
  }

  /**
   * Fetches and keeps one release by name and version whatever the approval of its own
   * manifest: a series' champion, which a run this clinic approved asks it to score beside the
   * run's model (issue 13; the coordinator lists every release of a name this node took part
   * in). Verified exactly as check() verifies; a refusal is recorded as check() records it.
   * Resolves once it is kept; throws why not (not listed, refused, or not downloaded).
   */
  async fetchRelease(studyName: string, version: number): Promise<void> {
    const dir = keptDir(this.options.stateDir, studyName, version);
    if (existsSync(join(dir, 'kept.json'))) return;
    const res = await new Promise<ListReleasesResponse__Output>((resolve, reject) => {
      this.options.client.ListReleases({ studyName }, authMetadata(this.options.credential), { deadline: deadlineIn(15_000) }, (err, r) => (err === null ? resolve(r!) : reject(err)));
    });
    const release = res.releases.find((r) => r.studyName === studyName && r.version === version);
    if (release === undefined) throw new FedlhsError('NOT_FOUND', `the coordinator does not list release ${studyName} v${version} for this node`, { details: { what: 'release', id: `${studyName}@${version}` } });
    const envelopeSha256 = sha256(release.envelope);
    if (this.refusedEnvelopes.has(envelopeSha256)) throw new Refusal('digest', `release ${studyName} v${version} (envelope SHA-256 ${envelopeSha256}) was refused earlier (see the audit log)`);
    try {
      await this.fetchOne(release, envelopeSha256, dir);
    } catch (err) {
      // A check() running at the same time may have kept it first.
      if (existsSync(join(dir, 'kept.json'))) return;
      const refusal = asRefusal(err);
      if (refusal !== undefined) {
        this.refusedEnvelopes.add(envelopeSha256);
        this.recordRefusal(release, envelopeSha256, refusal);
      }
      throw err;
    }
  }

  private key(): KeyObject {
    const pinned = this.options.releaseKey;
    if (pinned === undefined) {
      throw new Refusal('key', 'no release key was pinned at enrolment (the coordinator sent none), so no release can be verified; re-enrol this agent with a coordinator that has a release key');
    }
    return createPublicKey(pinned.publicPem);
  }

  /** Verifies and keeps one release, or throws a Refusal / SIGNATURE_INVALID (refused) or another error (transient). */
  private async fetchOne(release: Release__Output, envelopeSha256: string, dir: string): Promise<void> {
    const key = this.key();
    const expect = { studyName: release.studyName, version: release.version };
    let envelope: unknown;
    try {
      envelope = JSON.parse(release.envelope.toString('utf8'));
    } catch (err) {
      throw new Refusal('malformed', `the release envelope is not JSON (${(err as Error).message})`);
    }
    // 1. The signature and the predicate, before a single file is downloaded.
    const { predicate, digests } = verifyReleaseStatement(envelope, key, expect);
    if (predicate.manifestSha256 !== release.manifestSha256) {
      throw new Refusal('predicate', `the signed release names manifest ${predicate.manifestSha256}, the listing ${release.manifestSha256}`);
    }
    // 2. Each file, its size capped at the declared one and its digest against the signed one.
    const files = {} as Record<ReleaseFileName, Uint8Array>;
    for (const name of RELEASE_FILES) {
      const declared = release.files.find((f) => f.name === name);
      if (declared === undefined) throw new Refusal('subjects', `the listing declares no ${name}`, name);
      if (declared.sha256 !== digests[name]) throw new Refusal('digest', `${name}: the listing declares SHA-256 ${declared.sha256.slice(0, 64)}, the signature ${digests[name]}`, name);
      if (!Number.isSafeInteger(declared.size) || declared.size < 0 || declared.size > MAX_RELEASE_FILE_BYTES) {
        throw new Refusal('digest', `${name}: declared size ${declared.size} is not from 0 to ${MAX_RELEASE_FILE_BYTES} bytes`, name);
      }
      files[name] = await this.download(release, name, declared.size);
      checkReleaseFile(name, files[name], digests);
    }
    // 3. The whole: manifest hash, descriptor against the predicate.
    verifyRelease(envelope, files as ReleaseFiles, key, expect);
    this.keep(dir, release, files as ReleaseFiles, envelopeSha256, digests);
  }

  /** One file, refused as soon as it grows past its declared size or ends short of it. */
  private async download(release: Release__Output, name: ReleaseFileName, size: number): Promise<Buffer> {
    const call = this.options.client.DownloadReleaseFile({ studyName: release.studyName, version: release.version, fileName: name }, authMetadata(this.options.credential), { deadline: deadlineIn(this.options.timeoutMs ?? 600_000) });
    const chunks: Buffer[] = [];
    let received = 0;
    try {
      for await (const chunk of call as AsyncIterable<ReleaseFileChunk__Output>) {
        received += chunk.data.length;
        if (received > size) throw new Refusal('digest', `${name}: the download exceeds its declared ${size} bytes`, name);
        chunks.push(chunk.data);
      }
    } catch (err) {
      call.cancel();
      throw err;
    }
    if (received !== size) throw new Refusal('digest', `${name}: ${received} bytes arrived, ${size} declared`, name);
    return Buffer.concat(chunks, received);
  }

  /** Writes the verified release to a temp directory and renames it into place. */
  /** `digests`: the signed ones, which every file was checked against (for the audit entry). */
  private keep(dir: string, release: Release__Output, files: ReleaseFiles, envelopeSha256: string, digests: Record<ReleaseFileName, string>): void {
    const studyDir = join(releasesRoot(this.options.stateDir), release.studyName);
    mkdirSync(studyDir, { recursive: true, mode: 0o700 });
    const tmp = join(studyDir, `.incoming-${release.version}-${randomBytes(6).toString('hex')}`);
    const kept: KeptRecord = { keptAt: new Date().toISOString(), fingerprint: this.options.releaseKey!.fingerprint, aliases: [...release.aliases], envelopeSha256 };
    try {
      mkdirSync(tmp, { mode: 0o700 });
      for (const name of RELEASE_FILES) writeFileAtomic(join(tmp, name), files[name], 0o600);
      writeFileAtomic(join(tmp, 'envelope.json'), release.envelope, 0o600);
      writeFileAtomic(join(tmp, 'kept.json'), `${JSON.stringify(kept, null, 1)}\n`, 0o600);
      renameSync(tmp, dir);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
    this.options.state.audit({
      event: 'release_kept', coordinator: this.options.coordinator, studyId: release.studyId, round: release.round, sha256: envelopeSha256, outcome: 'kept',
      detail: `release ${release.studyName} v${release.version} verified against the pinned key ${kept.fingerprint.slice(0, 16)}…`,
      release: { studyName: release.studyName, version: release.version, envelopeSha256, files: digests },
    });
    this.options.log.info({ event: 'release.kept', studyName: release.studyName, version: release.version, round: release.round, aliases: release.aliases, path: dir }, `release ${release.studyName} v${release.version} verified and kept`);
  }

  /**
   * The envelope digest of a kept release: kept.json's, or (kept before it was recorded) that of
   * envelope.json on disk; undefined, with a warning, when neither can be read.
   */
  private keptEnvelopeSha256(dir: string): string | undefined {
    try {
      const kept = keptRecordSchema.parse(JSON.parse(readFileSync(join(dir, 'kept.json'), 'utf8')));
      return kept.envelopeSha256 ?? sha256(readFileSync(join(dir, 'envelope.json')));
    } catch (err) {
      this.options.log.warn({ event: 'release.aliases_failed', path: dir, err: (err as Error).message }, 'could not read the kept release\'s envelope digest to compare it with the listing');
      return undefined;
    }
  }

  /** Aliases are unsigned and change: kept.json follows the latest listing. */
  private updateAliases(dir: string, aliases: string[]): void {
    try {
      const path = join(dir, 'kept.json');
      const kept = keptRecordSchema.parse(JSON.parse(readFileSync(path, 'utf8')));
      const next = [...aliases].sort();
      if (JSON.stringify([...kept.aliases].sort()) === JSON.stringify(next)) return;
      writeFileAtomic(path, `${JSON.stringify({ ...kept, aliases: next }, null, 1)}\n`, 0o600);
    } catch (err) {
      this.options.log.warn({ event: 'release.aliases_failed', path: dir, err: (err as Error).message }, 'could not record the release\'s aliases');
    }
  }

  private recordRefusal(release: Release__Output, envelopeSha256: string, refusal: Refusal): void {
    // The audit log first: whoever reads the log line finds the refusal already on record.
    this.options.state.audit({
      event: 'release_refused', coordinator: this.options.coordinator, studyId: release.studyId, round: release.round, sha256: envelopeSha256, outcome: refusal.why, detail: refusal.message,
      release: { studyName: release.studyName, version: release.version, envelopeSha256, why: refusal.why, ...(refusal.file === undefined ? {} : { file: refusal.file }) },
    });
    this.options.log.warn(
      { event: 'release.refused', studyName: release.studyName, version: release.version, why: refusal.why, file: refusal.file, reason: refusal.message },
      `REFUSED release ${release.studyName} v${release.version} (${refusal.why}): ${refusal.message}`,
    );
  }
}
