import type { KeyObject } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import {
  FedlhsError,
  STUDY_NAME_PATTERN,
  RELEASE_FILES,
  bundleLength,
  publicKeysFromPem,
  studyFeatureNames,
  verifyManifestJson,
  verifyRelease,
  type Normalization,
  type ReleaseDescriptor,
  type ReleaseFiles,
  type StudyManifest,
} from '@fedlhs/core';
import { writeFileAtomic } from '@fedlhs/service';

/**
 * The releases this clinic kept (issue 12), as laid out in its state directory:
 *   releases/<studyName>/<version>/   the five bundle files, envelope.json, kept.json
 *   releases/deployed.json            the version deployed per study name and the history
 * A kept directory appears only whole (fetch.ts renames a verified temp dir into place), and
 * everything read from it is verified again against the pinned key before it is used.
 */

type SignatureWhy = 'malformed' | 'signature' | 'payload_type' | 'predicate' | 'subjects' | 'digest' | 'manifest' | 'descriptor' | 'key';

/** A study name as the manifest allows it: also safe as a directory name. */
export const STUDY_NAME = STUDY_NAME_PATTERN;

/** kept.json: when and with which key a release was kept, and its aliases as last listed (unsigned). */
export const keptRecordSchema = z.object({
  keptAt: z.string(),
  /** Fingerprint of the pinned key the release verified against. */
  fingerprint: z.string(),
  aliases: z.array(z.string()),
  /** SHA-256 of envelope.json as received. */
  envelopeSha256: z.string().optional(),
});
export type KeptRecord = z.infer<typeof keptRecordSchema>;

const normalizationSchema = z.object({
  method: z.literal('zscore'),
  features: z.array(z.object({ name: z.string(), mean: z.number(), std: z.number(), impute: z.number().optional(), excluded: z.boolean().optional() }).passthrough()),
}).passthrough();

/** One deployment step: a deploy by an operator, by the auto policy, or a rollback. */
export const deploymentSchema = z.object({
  studyName: z.string().regex(STUDY_NAME),
  version: z.number().int().min(1),
  action: z.enum(['deploy', 'auto', 'rollback']),
  at: z.string(),
  by: z.string(),
  /** none / local-zscore: this clinic's normalisation computed at deploy time (federated: absent, read from release.json). */
  normalization: normalizationSchema.optional(),
  /**
   * The kept version aliased 'champion' (kept.json, as last listed) when this step was taken;
   * absent when none was. The auto policy holds off an operator's deploy or rollback until the
   * alias moves to another version (deploy.ts autoPolicyHold).
   */
  champion: z.number().int().min(1).optional(),
});
export type Deployment = z.infer<typeof deploymentSchema>;

/** deployed.json: the current deployment per study name and every step before it. */
export const deployedFileSchema = z.object({
  format: z.literal('fedlhs.deployed/v1'),
  current: z.record(z.string(), deploymentSchema),
  history: z.array(deploymentSchema),
});
export type DeployedFile = z.infer<typeof deployedFileSchema>;

/** A release as `score` and the scoring service use it: verified again, parsed, ready to run. */
export interface DeployedRelease {
  studyName: string;
  version: number;
  dir: string;
  descriptor: ReleaseDescriptor;
  manifest: StudyManifest;
  /** model.json's modelTopology (a tfjs-layers Sequential). */
  modelTopology: Record<string, unknown>;
  /** weights.bin, in the descriptor's tensor order. */
  weights: Float32Array;
  /** The scaling scoring applies (federated from release.json, or this clinic's from deployed.json). */
  normalization: Normalization | undefined;
}

export const releasesRoot = (stateDir: string): string => join(stateDir, 'releases');
export const deployedPath = (stateDir: string): string => join(releasesRoot(stateDir), 'deployed.json');

/** The directory of a kept release; throws INVALID_ARGUMENT for a name or version that cannot be one. */
export function keptDir(stateDir: string, studyName: string, version: number): string {
  if (!STUDY_NAME.test(studyName)) throw new FedlhsError('INVALID_ARGUMENT', `${JSON.stringify(studyName)} is not a study name (lowercase letters, digits, ".", "_", "-")`, { details: { field: 'study' } });
  if (!Number.isInteger(version) || version < 1) throw new FedlhsError('INVALID_ARGUMENT', `${JSON.stringify(version)} is not a release version (a whole number from 1)`, { details: { field: 'version' } });
  return join(releasesRoot(stateDir), studyName, String(version));
}

/** A kept release's entry in the listing. */
export interface KeptSummary {
  studyName: string;
  version: number;
  dir: string;
  kept: KeptRecord;
}

/** Every kept release, by study name then version. A directory without a readable kept.json is not a kept release and is skipped. */
export function listKept(stateDir: string): KeptSummary[] {
  const root = releasesRoot(stateDir);
  if (!existsSync(root)) return [];
  const out: KeptSummary[] = [];
  for (const name of readdirSync(root).filter((n) => STUDY_NAME.test(n)).sort()) {
    const studyDir = join(root, name);
    let versions: string[];
    try {
      versions = readdirSync(studyDir).filter((v) => /^[1-9][0-9]*$/.test(v));
    } catch {
      continue; // deployed.json or another file
    }
    for (const v of versions.map(Number).sort((a, b) => a - b)) {
      const dir = join(studyDir, String(v));
      try {
        out.push({ studyName: name, version: v, dir, kept: keptRecordSchema.parse(JSON.parse(readFileSync(join(dir, 'kept.json'), 'utf8'))) });
      } catch {
        // not a kept release (kept.json is written with the files, in the same rename)
      }
    }
  }
  return out;
}

/** A kept release's bytes as stored: the envelope, the five files and kept.json. Not verified: see `verifyKept`. */
export interface KeptRelease extends KeptSummary {
  envelope: unknown;
  files: ReleaseFiles;
}

/** Reads a kept release; NOT_FOUND naming the command to run when it is not kept. */
export function loadKept(stateDir: string, studyName: string, version: number): KeptRelease {
  const dir = keptDir(stateDir, studyName, version);
  if (!existsSync(join(dir, 'kept.json'))) {
    throw new FedlhsError('NOT_FOUND', `release ${studyName} v${version} is not kept here; \`fedlhs-agent release list\` shows the kept ones (a running agent fetches new releases)`, { details: { what: 'release', id: `${studyName}@${version}` } });
  }
  const read = (name: string): Buffer => readFileSync(join(dir, name));
  let envelope: unknown;
  let kept: KeptRecord;
  try {
    envelope = JSON.parse(read('envelope.json').toString('utf8'));
    kept = keptRecordSchema.parse(JSON.parse(read('kept.json').toString('utf8')));
  } catch (err) {
    throw new FedlhsError('SIGNATURE_INVALID', `release ${studyName} v${version} in ${dir}: envelope.json or kept.json is unreadable (${(err as Error).message.slice(0, 200)}); it was changed after it was kept`, { details: { why: 'malformed' } });
  }
  const files = Object.fromEntries(RELEASE_FILES.map((name): [string, Buffer] => {
    try {
      return [name, read(name)];
    } catch (err) {
      throw new FedlhsError('SIGNATURE_INVALID', `release ${studyName} v${version} in ${dir}: ${name} is missing or unreadable (${(err as Error).message.slice(0, 200)}); it was changed after it was kept`, { details: { why: 'digest', file: name } });
    }
  })) as unknown as ReleaseFiles;
  return { studyName, version, dir, kept, envelope, files };
}

/**
 * A kept release verified again with the pinned key (the files on disk may have changed since
 * they were kept): SIGNATURE_INVALID saying so loudly otherwise.
 */
export function verifyKept(stateDir: string, studyName: string, version: number, pinnedPem: string): KeptRelease & { descriptor: ReleaseDescriptor } {
  const kept = loadKept(stateDir, studyName, version);
  // The current pinned key and those it replaced (release-pin.ts trustedReleasePem).
  let key: KeyObject[];
  try {
    key = publicKeysFromPem(pinnedPem);
  } catch (err) {
    throw new FedlhsError('SIGNATURE_INVALID', `the pinned release key does not parse (${(err as Error).message}); re-enrol to pin the coordinator's key`, { details: { why: 'malformed' } });
  }
  try {
    const { descriptor } = verifyRelease(kept.envelope, kept.files, key, { studyName, version });
    return { ...kept, descriptor };
  } catch (err) {
    const d = (err instanceof FedlhsError && err.code === 'SIGNATURE_INVALID' ? err.details : undefined) as { why: SignatureWhy; file?: string } | undefined;
    throw new FedlhsError('SIGNATURE_INVALID', `REFUSED: release ${studyName} v${version} in ${kept.dir} no longer verifies against the pinned release key (${(err as Error).message}); the files were changed after they were kept — remove that directory and let the agent fetch the release again`, {
      cause: err,
      details: { why: d?.why ?? 'digest', ...(d?.file === undefined ? {} : { file: d.file }) },
    });
  }
}

/** deployed.json, or an empty one; a file that does not parse is an error naming it (never treated as "nothing deployed"). */
export function readDeployed(stateDir: string): DeployedFile {
  const path = deployedPath(stateDir);
  if (!existsSync(path)) return { format: 'fedlhs.deployed/v1', current: {}, history: [] };
  try {
    return deployedFileSchema.parse(JSON.parse(readFileSync(path, 'utf8')));
  } catch (err) {
    throw new FedlhsError('CONFIG_INVALID', `${path} is not a fedlhs deployment record (${(err as Error).message.slice(0, 300)}); restore it from a backup, or move it aside and deploy again with \`fedlhs-agent release deploy <study> <version>\` (the deployment history it held is then lost; the audit log keeps every deployment)`, { cause: err });
  }
}

/** Replaces deployed.json atomically. */
export function writeDeployed(stateDir: string, deployed: DeployedFile): void {
  writeFileAtomic(deployedPath(stateDir), `${JSON.stringify(deployed, null, 1)}\n`, 0o600);
}

/**
 * What is wrong with a stored normalisation for a release whose features are `names` (empty
 * when nothing is): one entry per feature, in the features' order, each with a finite mean,
 * a finite standard deviation above 0 and a finite imputed value when one is given. Written
 * as operator-facing phrases, naming the feature.
 */
export function normalizationProblems(n: { features: readonly { name: string; mean: number; std: number; impute?: number | undefined; excluded?: boolean | undefined }[] }, names: readonly string[]): string[] {
  const got = n.features.map((f) => f.name);
  if (got.length !== names.length || got.some((g, j) => g !== names[j])) {
    return [`its features are ${JSON.stringify(got).slice(0, 300)}, the release's ${JSON.stringify(names).slice(0, 300)} (in this order)`];
  }
  const problems: string[] = [];
  for (const f of n.features) {
    if (!Number.isFinite(f.mean)) problems.push(`${f.name}: mean ${f.mean} is not a finite number`);
    if (!Number.isFinite(f.std) || f.std <= 0) problems.push(`${f.name}: standard deviation ${f.std} is not a finite number above 0`);
    if (f.impute !== undefined && !Number.isFinite(f.impute)) problems.push(`${f.name}: imputed value ${f.impute} is not a finite number`);
  }
  return problems;
}

/** weights.bin as float32 (little-endian, whatever this machine's byte order). */
export function weightsFromBytes(bytes: Uint8Array): Float32Array {
  if (bytes.byteLength % 4 !== 0) throw new FedlhsError('DATA_LOSS', `weights.bin has ${bytes.byteLength} bytes, not a whole number of float32 values`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(bytes.byteLength / 4);
  for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(i * 4, true);
  return out;
}

/**
 * A verified kept release's manifest, model topology and weights, checked against its
 * descriptor (shared by deployed releases and a series' champion scored beside a task's model).
 */
export function releaseModel(kept: KeptRelease & { descriptor: ReleaseDescriptor }): { manifest: StudyManifest; modelTopology: Record<string, unknown>; weights: Float32Array } {
  const { descriptor, studyName: name, version } = kept;
  const manifestJson = Buffer.from(kept.files['manifest.json']).toString('utf8');
  const manifest = verifyManifestJson(manifestJson, descriptor.study.manifestSha256);
  let modelTopology: Record<string, unknown>;
  try {
    const model = JSON.parse(Buffer.from(kept.files['model.json']).toString('utf8')) as { modelTopology?: unknown };
    if (typeof model.modelTopology !== 'object' || model.modelTopology === null) throw new Error('no modelTopology');
    modelTopology = model.modelTopology as Record<string, unknown>;
  } catch (err) {
    throw new FedlhsError('DATA_LOSS', `release ${name} v${version}: model.json is not a TF.js layers model (${(err as Error).message})`);
  }
  const weights = weightsFromBytes(kept.files['weights.bin']);
  const expected = bundleLength(descriptor.model.tensors);
  if (weights.length !== expected) throw new FedlhsError('DATA_LOSS', `release ${name} v${version}: weights.bin holds ${weights.length} values, release.json's tensors ${expected}`);
  return { manifest, modelTopology, weights };
}

/**
 * The release deployed for `studyName` (or the only deployed one when undefined), re-verified
 * on disk against the pinned key and parsed. INVALID_ARGUMENT listing the names when several
 * are deployed and none was named; NOT_FOUND with the command to run when none is.
 */
export function loadDeployedRelease(stateDir: string, studyName: string | undefined, pinnedPem: string): DeployedRelease {
  const deployed = readDeployed(stateDir);
  const names = Object.keys(deployed.current).sort();
  let name = studyName;
  if (name === undefined) {
    if (names.length === 0) {
      throw new FedlhsError('NOT_FOUND', 'no release is deployed at this clinic; see `fedlhs-agent release list`, then `fedlhs-agent release deploy <study> <version>`', { details: { what: 'release' } });
    }
    if (names.length > 1) throw new FedlhsError('INVALID_ARGUMENT', `several releases are deployed (${names.join(', ')}); name the study`, { details: { field: 'study' } });
    name = names[0]!;
  }
  const current = deployed.current[name];
  if (current === undefined) {
    throw new FedlhsError('NOT_FOUND', `no release of study ${JSON.stringify(name)} is deployed${names.length > 0 ? ` (deployed: ${names.join(', ')})` : ''}; see \`fedlhs-agent release list\`, then \`fedlhs-agent release deploy ${name} <version>\``, { details: { what: 'release', id: name } });
  }
  const kept = verifyKept(stateDir, name, current.version, pinnedPem);
  const { descriptor } = kept;
  const { manifest, modelTopology, weights } = releaseModel(kept);
  let normalization: Normalization | undefined;
  if (descriptor.normalization.method === 'federated-zscore') {
    normalization = { method: 'zscore', features: descriptor.normalization.features.map((f) => ({ name: f.name, mean: f.mean, std: f.std, impute: f.impute, ...(f.excluded === true ? { excluded: true } : {}) })) };
  } else {
    if (current.normalization === undefined) {
      throw new FedlhsError('CONFIG_INVALID', `release ${name} v${current.version} uses ${descriptor.normalization.method} but deployed.json holds no local normalisation for it; deploy it again with \`fedlhs-agent release deploy ${name} ${current.version}\``);
    }
    // deployed.json is a plain file: a hand-edited scaling would change every risk silently.
    const problems = normalizationProblems(current.normalization, studyFeatureNames(manifest));
    if (problems.length > 0) {
      throw new FedlhsError('CONFIG_INVALID', `${deployedPath(stateDir)}: the normalisation stored for release ${name} v${current.version} is unusable (${problems.join('; ')}); it was changed after the release was deployed — deploy it again with \`fedlhs-agent release deploy ${name} ${current.version}\` to compute it afresh`, { details: { key: 'deployed.json' } });
    }
    normalization = current.normalization as Normalization;
  }
  return { studyName: name, version: current.version, dir: kept.dir, descriptor, manifest, modelTopology, weights, normalization };
}
