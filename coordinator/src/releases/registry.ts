import { createHash } from 'node:crypto';
import { FedlhsError, RELEASE_FILES, STUDY_NAME_PATTERN, releaseDescriptorSchema, type ReleaseDescriptor, type ReleaseFileName } from '@fedlhs/core';
import type { Logger } from '@fedlhs/service';
import type { BlobStore } from '../blobs/blob-store.js';
import type { CoordinatorStore, ReleaseAliasRecord, ReleaseRecord } from '../store.js';
import { aliasNotFound, releaseNotFound } from '../store/release-errors.js';

/**
 * The release registry (issue 12): operators' names for release versions ("champion",
 * "challenger", anything), and read access to what a release published. Every alias change is
 * one unit of work with its audit row (`release.alias` + `admin.action`), so the trail can never
 * miss a change nor record one that did not happen.
 */

/** 1-32 lowercase letters, digits and "-". */
const ALIAS = /^[a-z0-9-]{1,32}$/;
/** The manifest's study name rule (core manifest.ts `identifier`). */
const STUDY_NAME = STUDY_NAME_PATTERN;
/** Files a release serves: the five signed ones and the DSSE envelope over them. */
const SERVED_RELEASE_FILES: readonly string[] = [...RELEASE_FILES, 'envelope.json'];
/** Descriptors kept parsed (they never change: named by their digest). */
const DESCRIPTOR_CACHE_MAX = 256;
/** release.json larger than this is not a descriptor the builder made. */
const DESCRIPTOR_MAX_BYTES = 16 * 1024 * 1024;

const invalid = (field: string, message: string): FedlhsError => new FedlhsError('INVALID_ARGUMENT', `${field}: ${message}`, { details: { field } });

/** Throws INVALID_ARGUMENT (field `alias`) unless `alias` is 1-32 lowercase letters, digits or "-", and not a number. */
export function checkAlias(alias: unknown): string {
  if (typeof alias !== 'string' || !ALIAS.test(alias)) throw invalid('alias', `1-32 lowercase letters, digits or "-" are required, got ${JSON.stringify(alias)?.slice(0, 80)}`);
  // A number would read as a version wherever a version or an alias may be given.
  if (Number.isFinite(Number(alias))) throw invalid('alias', `an alias cannot be a number (it would read as a version), got "${alias}"`);
  return alias;
}

/** Throws INVALID_ARGUMENT (field `name`) unless `name` can be a study name. */
export function checkStudyName(name: unknown, field = 'name'): string {
  if (typeof name !== 'string' || !STUDY_NAME.test(name)) throw invalid(field, `a study name (1-63 lowercase letters, digits, ".", "_" or "-") is required, got ${JSON.stringify(name)?.slice(0, 80)}`);
  return name;
}

/** Throws INVALID_ARGUMENT (field `version`) unless `version` is a whole number from 1 (a decimal string is accepted). */
export function checkVersion(version: unknown): number {
  const n = typeof version === 'string' && /^\d{1,9}$/.test(version) ? Number(version) : version;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 1) throw invalid('version', `a release version (a whole number from 1) is required, got ${JSON.stringify(version)?.slice(0, 80)}`);
  return n;
}

async function* once(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes;
}

/** What an alias change did. */
export interface AliasChange {
  studyName: string;
  alias: string;
  /** Where the alias points now (null: removed). */
  version: number | null;
  /** Where it pointed before (null: it was not set). */
  previous: number | null;
  operator: string;
  at: number;
}

export interface ReleaseRegistryOptions {
  store: CoordinatorStore;
  /** Where the bundle files live (kind 'release', named by their SHA-256). */
  blobs: BlobStore;
  log: Logger;
  /** Largest chunk read from the blob store. */
  chunkBytes: number;
  now?: () => number;
}

/** Release aliases and release reads for the admin API, CLI and dashboard. */
export class ReleaseRegistry {
  private readonly descriptors = new Map<string, ReleaseDescriptor>();
  private readonly now: () => number;

  constructor(private readonly opts: ReleaseRegistryOptions) {
    this.now = opts.now ?? Date.now;
  }

  /** A release, or NOT_FOUND. */
  async get(studyName: string, version: number): Promise<ReleaseRecord> {
    const r = await this.opts.store.getRelease(checkStudyName(studyName), checkVersion(version));
    if (r === undefined) throw releaseNotFound(studyName, version);
    return r;
  }

  /** Points `alias` of a study name at `version` (moving it if set), audited as `operator`. */
  async setAlias(studyName: string, alias: string, version: number, operator: string): Promise<AliasChange> {
    checkStudyName(studyName);
    checkAlias(alias);
    // NOT_FOUND before the write, with the same words as the store's guard (which still holds against a race).
    await this.get(studyName, checkVersion(version));
    const previous = await this.aliasVersion(studyName, alias);
    const at = this.now();
    const target = `${studyName}@${alias}`;
    await this.opts.store.write([
      { op: 'release.alias', studyName, alias, version, setBy: operator, at },
      { op: 'admin.action', a: { at, operator, action: 'release.alias', target, detail: `version ${version}${previous === null || previous === version ? '' : ` (was version ${previous})`}` } },
    ], 'release.alias');
    this.opts.log.info({ event: 'release.alias_set', studyName, alias, version, previous, operator }, `${target} now names version ${version}`);
    return { studyName, alias, version, previous, operator, at };
  }

  /** Removes `alias` of a study name (NOT_FOUND if it is not set), audited as `operator`. */
  async removeAlias(studyName: string, alias: string, operator: string): Promise<AliasChange> {
    checkStudyName(studyName);
    checkAlias(alias);
    const previous = await this.aliasVersion(studyName, alias);
    if (previous === null) throw aliasNotFound(studyName, alias);
    const at = this.now();
    const target = `${studyName}@${alias}`;
    await this.opts.store.write([
      { op: 'release.alias', studyName, alias, version: null, setBy: operator, at },
      { op: 'admin.action', a: { at, operator, action: 'release.unalias', target, detail: `was version ${previous}` } },
    ], 'release.unalias');
    this.opts.log.info({ event: 'release.alias_removed', studyName, alias, previous, operator }, `${target} removed (was version ${previous})`);
    return { studyName, alias, version: null, previous, operator, at };
  }

  /** The aliases of a study name (every study name when undefined). */
  aliases(studyName?: string): Promise<ReleaseAliasRecord[]> {
    return this.opts.store.listReleaseAliases(studyName);
  }

  private async aliasVersion(studyName: string, alias: string): Promise<number | null> {
    return (await this.opts.store.listReleaseAliases(studyName)).find((a) => a.alias === alias)?.version ?? null;
  }

  /**
   * A bundle file as stored: its size, digest and bytes (streamed). `envelope.json` is the DSSE
   * envelope from the release row. INVALID_ARGUMENT (field `file`) for a name the bundle has not.
   */
  file(release: ReleaseRecord, name: string): { name: string; size: number; sha256: string; chunks: AsyncIterable<Uint8Array> } {
    if (name === 'envelope.json') {
      const bytes = Buffer.from(release.envelope, 'utf8');
      return { name, size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex'), chunks: once(bytes) };
    }
    if (!SERVED_RELEASE_FILES.includes(name)) throw invalid('file', `one of ${SERVED_RELEASE_FILES.join(', ')} is required, got ${JSON.stringify(name).slice(0, 80)}`);
    const f = release.files.find((x) => x.name === name);
    // A row without one of its five files is a damaged release, not a bad request.
    if (f === undefined) throw new FedlhsError('DATA_LOSS', `release ${release.studyName} v${release.version} lists no ${name}`);
    return { name, size: f.size, sha256: f.sha256, chunks: this.opts.blobs.read({ sha256: f.sha256, length: f.size }, { chunkBytes: this.opts.chunkBytes }) };
  }

  /** The release's release.json, read from the blob store, checked against its digest and schema (cached). */
  async descriptor(release: ReleaseRecord): Promise<ReleaseDescriptor> {
    const f = release.files.find((x) => x.name === ('release.json' satisfies ReleaseFileName));
    if (f === undefined) throw new FedlhsError('DATA_LOSS', `release ${release.studyName} v${release.version} lists no release.json`);
    const cached = this.descriptors.get(f.sha256);
    if (cached !== undefined) return cached;
    if (f.size > DESCRIPTOR_MAX_BYTES) throw new FedlhsError('DATA_LOSS', `release.json of ${release.studyName} v${release.version} is ${f.size} bytes, more than ${DESCRIPTOR_MAX_BYTES}`);
    const parts: Uint8Array[] = [];
    for await (const chunk of this.opts.blobs.read({ sha256: f.sha256, length: f.size }, { chunkBytes: this.opts.chunkBytes })) parts.push(chunk);
    const bytes = Buffer.concat(parts);
    const digest = createHash('sha256').update(bytes).digest('hex');
    if (digest !== f.sha256) throw new FedlhsError('DATA_LOSS', `release.json of ${release.studyName} v${release.version} hashes to ${digest}, expected ${f.sha256}`);
    let parsed;
    try {
      parsed = releaseDescriptorSchema.safeParse(JSON.parse(bytes.toString('utf8')));
    } catch (err) {
      throw new FedlhsError('DATA_LOSS', `release.json of ${release.studyName} v${release.version} is not JSON`, { cause: err });
    }
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new FedlhsError('DATA_LOSS', `release.json of ${release.studyName} v${release.version} does not match the release format: ${issue?.path.join('.') ?? ''} ${issue?.message ?? ''}`.trim());
    }
    if (this.descriptors.size >= DESCRIPTOR_CACHE_MAX) this.descriptors.delete(this.descriptors.keys().next().value!);
    this.descriptors.set(f.sha256, parsed.data);
    return parsed.data;
  }
}
