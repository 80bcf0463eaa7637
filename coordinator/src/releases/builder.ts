import {
  FedlhsError, RELEASE_FILES, sha256Hex, RELEASE_FORMAT, bundleLength, layersModelJson, releaseDescriptorSchema, releasePolicy, signRelease, studyFeatureNames, verifyManifestJson,
  type ReleaseDescriptor, type ReleaseFileName, type ReleaseFiles, type ReleasePredicate,
} from '@fedlhs/core';
import type { Logger } from '@fedlhs/service';
import type { CheckpointStore } from '../checkpoints.js';
import type { ReleaseKey } from '../release-key.js';
import type { CoordinatorStore, ReleaseRecord, StudyRecord } from '../store.js';
import { featureSummary, metricsPart, normalizationOf, perSite } from './figures.js';
import { featureNeeds, modelCardOf, renderModelCard } from './model-card.js';
import { selectRound } from './selection.js';

const sha256 = sha256Hex;

export interface ReleaseBuilderOptions {
  store: CoordinatorStore;
  checkpoints: CheckpointStore;
  releaseKey: ReleaseKey;
  /** The coordinator's logger (release.created, release.failed, release.selection_fallback). */
  log: Logger;
  now: () => number;
  /** Chunk size of checkpoint reads. */
  chunkBytes: number;
  /** Told about each release once it is recorded (the coordinator's 'change' event, kind 'release'). */
  onCreated?: (release: ReleaseRecord) => void;
}

/** Why a study's last release attempt failed (the study detail shows it until a build succeeds). */
export interface ReleaseFailure {
  at: number;
  message: string;
}

/**
 * Makes the signed release of a COMPLETED study (docs/design/releases.md, flow 2): chooses the
 * round (selection.ts, validation figures only), reads and checks its checkpoint, builds the
 * five files of RELEASE_FILES, signs them with the release key, puts each in the blob store
 * (kind 'release') and inserts the release in one unit. One build at a time, so versions of a
 * study name are handed out in order; the store's guard refuses a version taken meanwhile by
 * another coordinator (STALE).
 */
export class ReleaseBuilder {
  private chain: Promise<unknown> = Promise.resolve();
  private readonly failures = new Map<string, ReleaseFailure>();

  constructor(private readonly opts: ReleaseBuilderOptions) {}

  /** The last failure of a study's release, if its release has not been made since. */
  failure(studyId: string): ReleaseFailure | undefined {
    return this.failures.get(studyId);
  }

  /**
   * Tries again every study whose release failed (the coordinator calls it when storage recovers
   * and on a timer); never throws. Resolves with how many are still failing.
   */
  async retryFailed(): Promise<number> {
    for (const studyId of [...this.failures.keys()]) await this.ensure(studyId);
    return this.failures.size;
  }

  /**
   * Makes the release of a study if it is COMPLETED and has none; never throws. A failure is
   * logged (`release.failed`, error, with the cause) and kept for the study's detail; the study
   * stays COMPLETED and it is tried again by `retryFailed` (storage recovery, a timer) and at every start. FAILED and STOPPED
   * studies get no release.
   */
  ensure(studyId: string): Promise<ReleaseRecord | undefined> {
    return this.ensureStudy(studyId, () => this.opts.store.getStudy(studyId));
  }

  /** `ensure` with the study record read by `read` inside the build chain (ensureReleases passes the listed one: COMPLETED is final). */
  private ensureStudy(studyId: string, read: () => Promise<StudyRecord | undefined>): Promise<ReleaseRecord | undefined> {
    const run = this.chain.then(async () => {
      try {
        const study = await read();
        if (study?.state !== 'COMPLETED') return undefined;
        const existing = await this.opts.store.releaseOfStudy(studyId);
        if (existing !== undefined) return existing;
        const made = await this.build(study);
        this.failures.delete(studyId);
        this.opts.onCreated?.(made);
        return made;
      } catch (err) {
        const message = (err as Error).message;
        this.failures.set(studyId, { at: this.opts.now(), message });
        this.opts.log.error({ event: 'release.failed', studyId, err }, `no release of study ${studyId}: ${message} (tried again when storage recovers, every 5 minutes and at start)`);
        return undefined;
      }
    });
    this.chain = run;
    return run;
  }

  /**
   * Makes the missing releases of every COMPLETED study (at start, and on demand); never throws.
   * Resolves with how many COMPLETED studies have a release now and how many failed.
   */
  async ensureReleases(): Promise<{ released: number; failed: number }> {
    let studies: StudyRecord[];
    try {
      studies = await this.opts.store.listStudies();
    } catch (err) {
      this.opts.log.error({ event: 'release.failed', err }, `cannot list studies to make their releases: ${(err as Error).message}`);
      return { released: 0, failed: 1 };
    }
    let released = 0;
    let failed = 0;
    // In the order the studies ended (then began): versions of one study name follow that order.
    const completed = studies.filter((x) => x.state === 'COMPLETED').sort((a, b) => (a.endedAt ?? a.createdAt) - (b.endedAt ?? b.createdAt) || a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1));
    for (const s of completed) {
      if ((await this.ensureStudy(s.id, async () => s)) === undefined) failed++;
      else released++;
    }
    return { released, failed };
  }

  /** Resolves once no build is running or queued (shutdown waits for it: a build must not outlive the store). */
  async idle(): Promise<void> {
    for (let seen: Promise<unknown> | undefined; seen !== this.chain; ) {
      seen = this.chain;
      await seen.catch(() => undefined);
    }
  }

  /** Builds, signs, stores and records the release of a COMPLETED study; throws on any failure. */
  async build(study: StudyRecord): Promise<ReleaseRecord> {
    const { store, checkpoints, releaseKey, log, now } = this.opts;
    if (study.state !== 'COMPLETED') throw new FedlhsError('INVALID_STATE', `study ${study.id} is ${study.state}: only a COMPLETED study is released`);
    // manifest.json is the approved manifest byte for byte; verifyManifestJson checks it still
    // hashes to the manifest hash the clinics approved.
    const manifestBytes = Buffer.from(study.manifestJson, 'utf8');
    const manifest = verifyManifestJson(study.manifestJson, study.manifestHash);
    const policy = releasePolicy(manifest);
    const k = manifest.data.minCellCount;

    const [rounds, metrics, nodes, statistics] = await Promise.all([store.listRounds(study.id), store.listMetrics(study.id), store.listNodes(), store.listStatistics(study.id)]);
    const evaluatedByRound = new Map<number, string[]>();
    const trained = new Set<string>();
    const tookPart = new Set<string>();
    for (const r of rounds) {
      for (const t of await store.listTasks(r.id)) {
        tookPart.add(t.nodeId);
        // What counts for the release is what its committed attempts were made of.
        if (t.state !== 'ACCEPTED' || r.state !== 'COMMITTED') continue;
        // With secure aggregation, a clinic trained when its masked update went into the sum.
        if (t.kind === 'TRAIN' || t.kind === 'SECAGG_MASKED_INPUT') trained.add(t.nodeId);
        if (t.kind === 'EVALUATE') evaluatedByRound.set(r.round, [...(evaluatedByRound.get(r.round) ?? []), t.nodeId]);
      }
    }
    // Sites that approved the study but never had a task (too small to train) took part too:
    // they receive the release (store.nodeTookPart, the download rule).
    for (const n of nodes) if (!tookPart.has(n.id) && (await store.nodeTookPart(n.id, study.id))) tookPart.add(n.id);
    const selection = selectRound({ rule: policy.selection, rounds, metrics, evaluatedSites: new Map([...evaluatedByRound].map(([n, ids]) => [n, ids.length])) });
    if (selection.fallback || selection.warnings.length > 0) {
      log.warn({ event: 'release.selection_fallback', studyId: study.id, rule: selection.rule, round: selection.round, warnings: selection.warnings }, selection.warnings.join('; '));
    }
    const chosen = rounds.find((r) => r.id === selection.roundId)!;

    // The checkpoint as DownloadModel and the admin API serve it, checked against its record.
    const specs = checkpoints.loadSpecs(study.id);
    const parts: Buffer[] = [];
    for await (const chunk of checkpoints.read(chosen.checkpointPath!, this.opts.chunkBytes)) parts.push(Buffer.from(chunk));
    const weights = Buffer.concat(parts);
    const weightsSha256 = sha256(weights);
    if (weightsSha256 !== chosen.checkpointSha256) throw new FedlhsError('DATA_LOSS', `the checkpoint of round ${chosen.round} hashes to ${weightsSha256}, recorded ${chosen.checkpointSha256}`);
    if (weights.length !== bundleLength(specs) * 4) throw new FedlhsError('DATA_LOSS', `the checkpoint of round ${chosen.round} is ${weights.length} bytes, the model needs ${bundleLength(specs) * 4}`);

    const previous = (await store.listReleases(study.name, 1))[0];
    const version = (previous?.version ?? 0) + 1;
    const createdAt = now();
    const siteNames = new Map(nodes.map((n) => [n.id, n.siteName]));
    const siteName = (id: string): string => siteNames.get(id) ?? id;
    const partInput = { rows: metrics, roundId: chosen.id, evaluated: [...new Set(evaluatedByRound.get(chosen.round) ?? [])], siteName, minCellCount: k };
    const summary = featureSummary(statistics, manifest);
    const normalization = normalizationOf(manifest, study.parameters);
    const excluded = normalization.features.filter((f) => f.excluded === true).map((f) => f.name);
    const descriptor: ReleaseDescriptor = {
      format: RELEASE_FORMAT,
      study: { name: study.name, id: study.id, manifestSha256: study.manifestHash, description: manifest.description },
      version,
      round: chosen.round,
      createdAt: new Date(createdAt).toISOString(),
      selection: { rule: selection.rule, reason: selection.reason, warnings: selection.warnings, candidates: selection.candidates },
      model: { format: 'tfjs-layers', inputs: studyFeatureNames(manifest).length, tensors: specs.map((s) => ({ name: s.name, shape: [...s.shape] })), weightsSha256, output: 'risk' },
      features: { featureSpec: manifest.data.featureSpec, names: studyFeatureNames(manifest), label: manifest.data.label, needs: featureNeeds(manifest) },
      normalization,
      riskBands: policy.riskBands.map((b) => ({ ...b })),
      metrics: { validation: metricsPart('evaluation', partInput), test: metricsPart('test', partInput), minCellCount: k },
      dataSummary: { sites: tookPart.size, sitesThatTrained: trained.size, perSite: perSite(partInput), features: summary.features, note: summary.note },
      lineage: {
        studyId: study.id, round: chosen.round, checkpointSha256: chosen.checkpointSha256!,
        parent: previous === undefined ? null : { version: previous.version, studyId: previous.studyId, round: previous.round },
        signer: releaseKey.fingerprint,
      },
      modelCard: modelCardOf(manifest, {
        sites: tookPart.size, sitesThatTrained: trained.size, warnings: selection.warnings,
        extraLimitations: excluded.length > 0 ? [`Features left out of the model (no federated statistics; constant 0): ${excluded.join(', ')}.`] : [],
      }),
    };
    const checked = releaseDescriptorSchema.safeParse(descriptor);
    if (!checked.success) {
      throw new FedlhsError('INTERNAL', `release.json of study ${study.id} does not satisfy its schema: ${checked.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ').slice(0, 500)}`);
    }
    const files: ReleaseFiles = {
      'manifest.json': manifestBytes,
      'model.json': layersModelJson(manifest.model.topology, specs),
      'weights.bin': weights,
      'release.json': Buffer.from(`${JSON.stringify(checked.data, null, 2)}\n`, 'utf8'),
      'model-card.md': Buffer.from(renderModelCard(checked.data), 'utf8'),
    };
    const predicate: ReleasePredicate = { studyName: study.name, version, studyId: study.id, round: chosen.round, manifestSha256: study.manifestHash, createdAt: descriptor.createdAt };
    const envelope = signRelease(files, predicate, releaseKey.privateKey);
    const listed: ReleaseRecord['files'] = [];
    for (const name of RELEASE_FILES as readonly ReleaseFileName[]) {
      const bytes = files[name];
      const ref = await checkpoints.blobs.put([bytes], { kind: 'release', expectedSha256: sha256(bytes) });
      listed.push({ name, sha256: ref.sha256, size: ref.length });
    }
    const record: ReleaseRecord = {
      studyName: study.name, version, studyId: study.id, round: chosen.round, manifestSha256: study.manifestHash,
      envelope: JSON.stringify(envelope), files: listed, createdAt, parentVersion: previous?.version ?? null,
    };
    await store.write([{ op: 'release.insert', r: record }], 'release.insert');
    log.info(
      { event: 'release.created', studyId: study.id, studyName: study.name, version, round: chosen.round, rule: selection.rule, fingerprint: releaseKey.fingerprint, parentVersion: record.parentVersion },
      `release ${study.name} v${version} made of round ${chosen.round} (${selection.reason})`,
    );
    return record;
  }
}
