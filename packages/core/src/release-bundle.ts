import { createPublicKey, type KeyObject } from 'node:crypto';
import { sha256Hex } from './tensors.js';
import { FedlhsError } from './errors.js';
import { inTotoStatement, signEnvelope, verifyStatement, IN_TOTO_PAYLOAD_TYPE, type DsseEnvelope, type InTotoStatement } from './dsse.js';
import { RELEASE_FILES, RELEASE_PREDICATE_TYPE, releaseDescriptorSchema, type ReleaseDescriptor, type ReleaseFileName, type ReleasePredicate } from './release-format.js';

/** The bytes of each bundle file. */
export type ReleaseFiles = Record<ReleaseFileName, Uint8Array>;

const sha256 = sha256Hex;

/**
 * model.json in the TF.js layers-model format (what tf.loadLayersModel reads): the topology as
 * the manifest declares it, and a weights manifest naming weights.bin with every tensor in the
 * manifest's order, float32.
 */
export function layersModelJson(topology: Record<string, unknown>, tensors: readonly { name: string; shape: readonly number[] }[]): Buffer {
  const model = {
    format: 'layers-model',
    generatedBy: 'fedlhs',
    convertedBy: null,
    modelTopology: topology,
    weightsManifest: [{ paths: ['weights.bin'], weights: tensors.map((t) => ({ name: t.name, shape: [...t.shape], dtype: 'float32' })) }],
  };
  return Buffer.from(JSON.stringify(model), 'utf8');
}

/** The signed envelope over the bundle: an in-toto Statement whose subjects are the files and their digests. */
export function signRelease(files: ReleaseFiles, predicate: ReleasePredicate, privateKey: KeyObject): DsseEnvelope {
  const subject = RELEASE_FILES.map((name) => ({ name, digest: { sha256: sha256(files[name]) } }));
  return signEnvelope(IN_TOTO_PAYLOAD_TYPE, inTotoStatement(subject, RELEASE_PREDICATE_TYPE, predicate), privateKey);
}

type RefusalWhy = 'predicate' | 'subjects' | 'digest' | 'manifest' | 'descriptor';
const refused = (why: RefusalWhy, message: string, extra: { file?: string } = {}): FedlhsError<'SIGNATURE_INVALID'> =>
  new FedlhsError('SIGNATURE_INVALID', message, { details: { why, ...extra } });

/**
 * The public keys in a PEM text (one or more `PUBLIC KEY` blocks: a pinned key and the keys it
 * replaced). Throws SIGNATURE_INVALID (why 'key') when there is none or a block does not parse.
 */
export function publicKeysFromPem(text: string): KeyObject[] {
  const blocks = text.match(/-----BEGIN PUBLIC KEY-----[\s\S]*?-----END PUBLIC KEY-----/g) ?? [];
  if (blocks.length === 0) throw new FedlhsError('SIGNATURE_INVALID', 'no PEM public key was given to verify releases with', { details: { why: 'key' } });
  return blocks.map((b) => {
    try {
      return createPublicKey(b);
    } catch (err) {
      throw new FedlhsError('SIGNATURE_INVALID', `a pinned release key does not parse: ${(err as Error).message}`, { cause: err, details: { why: 'key' } });
    }
  });
}

/** The Statement of an envelope that one of `keys` signed (the first that verifies), or the last key's refusal. */
function statementSignedByAny(envelope: unknown, keys: KeyObject | readonly KeyObject[]): InTotoStatement {
  const list = Array.isArray(keys) ? (keys as readonly KeyObject[]) : [keys as KeyObject];
  let refusal: unknown = new FedlhsError('SIGNATURE_INVALID', 'no key to verify the release with', { details: { why: 'key' } });
  for (const key of list) {
    try {
      return verifyStatement(envelope, key);
    } catch (err) {
      // A malformed envelope or Statement is malformed whatever the key: said at once.
      if (!(err instanceof FedlhsError) || (err.details as { why?: string } | undefined)?.why !== 'signature') throw err;
      refusal = err;
    }
  }
  throw refusal;
}

/**
 * Checks a signed release before anything of it is kept, in the order the proto documents:
 * the envelope's signature with the pinned key; the Statement's predicate (type, and the study
 * name and version expected when given); that exactly RELEASE_FILES are subjects; then the
 * signed statement's subjects against the statement only (no file needed). Returns the
 * Statement's predicate and subject digests, so that files can be checked as they arrive
 * (`checkReleaseFile`). SIGNATURE_INVALID with details.why: 'malformed' | 'signature' |
 * 'payload_type' | 'predicate' | 'subjects'.
 */
export function verifyReleaseStatement(envelope: unknown, publicKey: KeyObject | readonly KeyObject[], expect?: { studyName?: string; version?: number }): { predicate: ReleasePredicate; digests: Record<ReleaseFileName, string> } {
  const statement: InTotoStatement = statementSignedByAny(envelope, publicKey);
  if (statement.predicateType !== RELEASE_PREDICATE_TYPE) throw refused('predicate', `the Statement's predicateType is ${JSON.stringify(statement.predicateType)}, not ${RELEASE_PREDICATE_TYPE}`);
  const p = statement.predicate as Partial<ReleasePredicate> | undefined;
  if (
    typeof p !== 'object' || p === null || typeof p.studyName !== 'string' || typeof p.studyId !== 'string' || !Number.isInteger(p.version) || !Number.isInteger(p.round) ||
    typeof p.manifestSha256 !== 'string' || !/^[0-9a-f]{64}$/.test(p.manifestSha256) || typeof p.createdAt !== 'string'
  ) {
    throw refused('predicate', 'the Statement\'s predicate is not a fedlhs release predicate (studyName, version, studyId, round, manifestSha256, createdAt)');
  }
  if (expect?.studyName !== undefined && p.studyName !== expect.studyName) throw refused('predicate', `the signed release is of study ${JSON.stringify(p.studyName)}, not ${JSON.stringify(expect.studyName)}`);
  if (expect?.version !== undefined && p.version !== expect.version) throw refused('predicate', `the signed release is version ${p.version}, not ${expect.version}`);
  const names = statement.subject.map((s) => s.name).sort();
  const wanted = [...RELEASE_FILES].sort();
  if (names.length !== wanted.length || names.some((n, i) => n !== wanted[i])) {
    throw refused('subjects', `the signed subjects are ${JSON.stringify(names)}, expected exactly ${JSON.stringify(wanted)}`);
  }
  const digests = Object.fromEntries(statement.subject.map((s) => [s.name, s.digest.sha256])) as Record<ReleaseFileName, string>;
  return { predicate: p as ReleasePredicate, digests };
}

/** Throws SIGNATURE_INVALID (why 'digest', naming the file) unless `bytes` has the signed digest. */
export function checkReleaseFile(name: ReleaseFileName, bytes: Uint8Array, digests: Record<ReleaseFileName, string>): void {
  const actual = sha256(bytes);
  if (actual !== digests[name]) throw refused('digest', `${name}: SHA-256 ${actual} differs from the signed ${digests[name]}`, { file: name });
}

/** The `name` of a manifest.json, or SIGNATURE_INVALID (why 'manifest') when it is not JSON with a string name. */
function manifestStudyName(bytes: Uint8Array): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (err) {
    throw refused('manifest', `manifest.json is not JSON: ${(err as Error).message.slice(0, 200)}`);
  }
  const name = typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? (parsed as { name?: unknown }).name : undefined;
  if (typeof name !== 'string') throw refused('manifest', 'manifest.json is not a JSON object with a string `name`');
  return name;
}

/**
 * A whole release checked: the statement (verifyReleaseStatement), every file's digest, that
 * manifest.json hashes to the signed manifestSha256 and is JSON whose `name` is the signed
 * studyName, and that release.json parses and names the same study, version, round and weights
 * digest. Returns the parsed descriptor. SIGNATURE_INVALID with details.why as
 * verifyReleaseStatement, or 'digest' | 'manifest' | 'descriptor'.
 */
export function verifyRelease(envelope: unknown, files: ReleaseFiles, publicKey: KeyObject | readonly KeyObject[], expect?: { studyName?: string; version?: number }): { predicate: ReleasePredicate; descriptor: ReleaseDescriptor } {
  const { predicate, digests } = verifyReleaseStatement(envelope, publicKey, expect);
  for (const name of RELEASE_FILES) checkReleaseFile(name, files[name], digests);
  if (sha256(files['manifest.json']) !== predicate.manifestSha256) {
    throw refused('manifest', `manifest.json hashes to ${sha256(files['manifest.json'])}, the release names manifest ${predicate.manifestSha256}`);
  }
  // Defence in depth against a coordinator that signs one study's name over another's manifest.
  const manifestName = manifestStudyName(files['manifest.json']);
  if (manifestName !== predicate.studyName) {
    throw refused('manifest', `manifest.json names study ${JSON.stringify(manifestName)}, the release is signed as study ${JSON.stringify(predicate.studyName)}`);
  }
  let descriptor: ReleaseDescriptor;
  try {
    descriptor = releaseDescriptorSchema.parse(JSON.parse(Buffer.from(files['release.json']).toString('utf8')));
  } catch (err) {
    throw refused('descriptor', `release.json is not a valid fedlhs.release/v1 descriptor: ${(err as Error).message.slice(0, 300)}`);
  }
  const d = descriptor;
  if (d.study.name !== predicate.studyName || d.version !== predicate.version || d.round !== predicate.round || d.study.id !== predicate.studyId || d.study.manifestSha256 !== predicate.manifestSha256) {
    throw refused('descriptor', 'release.json names another study, version, round or manifest than the signed predicate');
  }
  if (d.model.weightsSha256 !== digests['weights.bin']) throw refused('descriptor', 'release.json names other weights than the signed weights.bin');
  return { predicate, descriptor };
}
