import { existsSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { join } from 'node:path';
import { WIRE_STRINGS, float32Bytes, sanitizeWireText, verifyManifestJson, type StudyManifest } from '@fedlhs/core';
import type { AgentMessage, ListStudiesResponse__Output, Readiness__Output as Readiness, Study__Output } from '@fedlhs/proto';
import { writeFileAtomic, type Logger } from '@fedlhs/service';
import type { AgentState, NodeCredential } from './agent-state.js';
import type { AgentConfig } from './config.js';
import { authMetadata, deadlineIn, type Clients } from './connection.js';
import type { LocalData } from './local-data.js';
import { downloadModel } from './transfer.js';
import { PrivacyBudget, type PrivacyBudgetMessage } from './privacy-budget.js';
import { roundCount } from './privacy-counts.js';
import { checkAnnouncedTemplate, isApproved, rememberTemplate, runApproval, type RunApproval, type TemplateCheck } from './series-approval.js';

/** A study announced on this session, with the manifest if it verified and the readiness last reported. */
export interface KnownStudy {
  study: Study__Output;
  manifest: StudyManifest | undefined;
  readiness: Readiness;
  detail: string;
  /** The training rows last reported with READY (0 otherwise). */
  trainingRows: number;
  /** Its series template as checked (a refused one leaves the run to approval by manifest hash). */
  series: TemplateCheck;
  /** How its manifest stood with this clinic's approvals at the last readiness check. */
  approval?: RunApproval | undefined;
  /** The PrivacyBudget last reported (undefined: none was, the study has no DP and the clinic no budget). */
  privacy?: PrivacyBudgetMessage | undefined;
  /** A round of it was declined on budget: the clinic withdraws if no further round fits. */
  budgetDeclined?: boolean;
}

/** What the study tracker needs; `send` writes to the current control session. */
export interface StudyTrackerOptions {
  config: AgentConfig;
  state: AgentState;
  credential: NodeCredential;
  clients: Clients;
  data: LocalData;
  log: Logger;
  send: (message: AgentMessage) => void;
  /** Called when a study is announced COMPLETED (the agent then looks for its release). */
  onStudyCompleted?: ((study: Study__Output) => void) | undefined;
  /** Called when a study is announced ended in any state (a data-triggered series then reports: series-data.ts). */
  onStudyEnded?: ((study: Study__Output) => void) | undefined;
}

/**
 * The studies announced on the current session: verifies each manifest, reports this clinic's
 * readiness (approval, then the local data check), picks up approvals given while running, and
 * keeps the final model of completed studies this clinic took part in.
 */
export class StudyTracker {
  private readonly studies = new Map<string, KnownStudy>();
  /** Completed studies whose final model the coordinator refused this agent (logged once each). */
  private readonly finalModelRefused = new Set<string>();
  /** Refused series templates already logged and audited (study id and manifest hash), said once per process. */
  private readonly templatesRefused = new Set<string>();
  private readonly config: AgentConfig;
  private readonly state: AgentState;
  private readonly credential: NodeCredential;
  private readonly clients: Clients;
  private readonly data: LocalData;
  private readonly log: Logger;
  private readonly send: (message: AgentMessage) => void;
  private readonly onStudyCompleted: ((study: Study__Output) => void) | undefined;
  private readonly onStudyEnded: ((study: Study__Output) => void) | undefined;
  private readonly budget: PrivacyBudget;

  constructor(options: StudyTrackerOptions) {
    this.config = options.config;
    this.state = options.state;
    this.credential = options.credential;
    this.clients = options.clients;
    this.data = options.data;
    this.log = options.log;
    this.send = options.send;
    this.onStudyCompleted = options.onStudyCompleted;
    this.onStudyEnded = options.onStudyEnded;
    this.budget = new PrivacyBudget(options.state, options.config.privacy);
  }

  /**
   * The study's privacy ledger changed (tasks/train.ts): the readiness is sent again with the
   * new PrivacyBudget; after a round declined on budget the clinic withdraws if no round fits.
   */
  async privacyChanged(studyId: string, declined: boolean): Promise<void> {
    const known = this.studies.get(studyId);
    if (known === undefined) return;
    if (declined) known.budgetDeclined = true;
    await this.evaluateReadiness(known, false);
  }

  /** The study as announced on this session, if it was. */
  get(studyId: string): KnownStudy | undefined {
    return this.studies.get(studyId);
  }

  /**
   * Whether the study's manifest `hash` is approved here: by its hash, or by its series'
   * approval when its announced template checked out (series-approval.ts).
   */
  approval(studyId: string, hash: string): RunApproval {
    const known = this.studies.get(studyId);
    return runApproval(this.state, hash, known?.manifest, known?.series.kind === 'ok');
  }

  /** After a Welcome: forget what was reported (the new session starts with none) and catch up on final models. */
  welcomed(): void {
    // A new session starts with no readiness on the coordinator's side: report afresh.
    this.studies.clear();
    void this.catchUpFinalModels();
  }

  /** Handles a study announcement: a new or changed manifest is verified and its readiness reported. */
  async onStudy(study: Study__Output): Promise<void> {
    if (study.state !== 'STUDY_STATE_RUNNING') {
      const known = this.studies.get(study.studyId);
      this.studies.delete(study.studyId);
      // A completed study gets a release (issue 12): look for it whether or not this clinic trained.
      if (study.state === 'STUDY_STATE_COMPLETED') this.onStudyCompleted?.(study);
      this.onStudyEnded?.(study);
      if (study.state === 'STUDY_STATE_COMPLETED' && known?.readiness === 'READINESS_READY') await this.fetchFinalModel(study);
      return;
    }
    let manifest: StudyManifest | undefined;
    try {
      manifest = verifyManifestJson(study.manifestJson, study.manifestSha256);
    } catch (err) {
      this.log.error({ event: 'study.manifest_invalid', studyId: study.studyId, err: (err as Error).message }, 'announced manifest failed verification; not taking part');
    }
    if (manifest !== undefined) this.state.recordManifest({ hash: study.manifestSha256, studyId: study.studyId, name: manifest.name, json: study.manifestJson });
    const series = manifest === undefined ? ({ kind: 'none' } as const) : this.checkSeries(study, manifest);
    const previous = this.studies.get(study.studyId);
    if (previous !== undefined && previous.study.manifestSha256 === study.manifestSha256) {
      previous.study = study; // a progress announcement: readiness only changes if something local did
      // ... or if the run's template, refused or missing before, now checks out (a re-announcement
      // after the coordinator restarted): the series approval may cover the run now.
      if (previous.series.kind !== 'ok' && series.kind === 'ok') {
        previous.series = series;
        await this.evaluateReadiness(previous, true);
      }
      return;
    }
    const known: KnownStudy = { study, manifest, readiness: 'READINESS_UNSPECIFIED', detail: '', trainingRows: 0, series };
    this.studies.set(study.studyId, known);
    await this.evaluateReadiness(known, true);
  }

  /**
   * Checks a series run's template: keeps one that checks out (for \`review\` and approval);
   * one that does not is logged and audited, once, and never trusted.
   */
  private checkSeries(study: Study__Output, manifest: StudyManifest): TemplateCheck {
    const check = checkAnnouncedTemplate(study, manifest);
    if (check.kind === 'ok') {
      if (rememberTemplate(this.state, check)) {
        this.log.info({ event: 'series.template_seen', studyId: study.studyId, series: check.template.name, templateSha256: check.hash }, `new study series ${check.template.name} (template ${check.hash}): \`fedlhs-agent review\` shows it, \`fedlhs-agent approve ${check.hash}\` approves its runs`);
      }
    } else if (check.kind === 'refused') {
      const key = `${study.studyId}\u0000${study.manifestSha256}`;
      if (!this.templatesRefused.has(key)) {
        this.templatesRefused.add(key);
        this.log.warn({ event: 'series.template_refused', studyId: study.studyId, manifestSha256: study.manifestSha256, reason: check.reason }, `study ${study.studyId}: its series template was refused (${check.reason}); the run needs approval of its own manifest`);
        this.state.audit({ event: 'series_template_refused', coordinator: this.config.coordinator.address, studyId: study.studyId, sha256: study.seriesTemplateSha256.slice(0, 64), detail: check.reason });
      }
    }
    return check;
  }

  private async evaluateReadiness(known: KnownStudy, force: boolean): Promise<void> {
    const { study, manifest } = known;
    let readiness: Readiness;
    let detail = '';
    // With READY: the training split's rows, exactly what an update's num_examples will be (tasks/train.ts).
    let trainingRows = 0;
    if (manifest === undefined) {
      readiness = 'READINESS_WITHDRAWN';
      detail = 'manifest failed verification against its hash';
    } else {
      let approval = this.approval(study.studyId, study.manifestSha256);
      if (!approval.approved && this.config.autoApprove) {
        this.state.approve(study.manifestSha256, 'auto-approve');
        // Its series too: otherwise a data-triggered series would never hear from this clinic (series-data.ts reports only for approved templates).
        if (known.series.kind === 'ok') this.state.approveSeriesTemplate(known.series.hash, 'auto-approve');
        this.log.warn({ event: 'study.auto_approved', studyId: study.studyId, manifestSha256: study.manifestSha256 }, '!!! AUTO-APPROVED study manifest without operator review (--auto-approve: demos and simulations only) !!!');
        approval = this.approval(study.studyId, study.manifestSha256);
      }
      known.approval = approval;
      if (!approval.approved) {
        readiness = 'READINESS_NOT_APPROVED';
        detail = approval.detail;
      } else {
        // The clinic's budget first (privacy-budget.ts): a study without DP when it holds one, or
        // (at announcement, or once a round was declined on budget) no round that fits any more.
        const budgetWithdrawal = manifest.privacy?.dp === undefined || force || known.budgetDeclined === true ? this.budget.withdrawal(study.studyId, manifest) : undefined;
        const check = budgetWithdrawal !== undefined ? undefined : await this.data.check(manifest);
        readiness = check === undefined ? 'READINESS_WITHDRAWN' : check.ok ? 'READINESS_READY' : check.readiness;
        // Rounded as the manifest's privacy.counts says, like the update's num_examples (tasks/train.ts).
        if (check?.ok === true) trainingRows = roundCount(manifest, check.data.train.rows);
        // A series run: what this clinic has now, for the newly labelled count of a series without a window (series-data.ts).
        if (check?.ok === true && manifest.series !== undefined) {
          this.state.recordSeriesCount({ seriesName: manifest.series.name, run: manifest.series.run, templateSha256: manifest.series.templateSha256, labelled: check.data.train.rows + check.data.holdout.rows });
        }
        // READY with warnings (data the study needs that this export lacks) tells the operator too.
        detail = check === undefined ? budgetWithdrawal! : check.ok ? (check.warnings.length === 0 ? '' : `ready, with warnings: ${check.warnings.join('; ')}`) : check.detail;
        if (check === undefined && readiness !== known.readiness) {
          this.log.warn({ event: 'privacy.withdrawn', studyId: study.studyId, detail }, `study ${study.studyId}: withdrawn, ${detail}`);
        }
        if (check?.ok === true && check.warnings.length > 0 && detail !== known.detail) {
          this.log.warn({ event: 'data.warning', studyId: study.studyId, warnings: check.warnings }, `study ${study.studyId}: ${check.warnings.join('; ')}`);
        }
      }
    }
    // Within the wire's limits for detail (one line, no control characters, capped): data errors quote local messages.
    detail = sanitizeWireText(detail, WIRE_STRINGS['StudyReadiness.detail'].max);
    const privacy = this.budget.message(study.studyId, manifest);
    const changed = readiness !== known.readiness || detail !== known.detail || trainingRows !== known.trainingRows || JSON.stringify(privacy) !== JSON.stringify(known.privacy);
    known.readiness = readiness;
    known.detail = detail;
    known.trainingRows = trainingRows;
    known.privacy = privacy;
    if (changed || force) {
      if (readiness === 'READINESS_NOT_APPROVED') {
        // A series run not yet covered can be approved by its series (once for every run) or by its own manifest.
        const series = known.approval?.series;
        const how = series !== undefined && !series.approved ? `\`fedlhs-agent approve ${series.hash}\` (series ${series.name}, every run) or \`fedlhs-agent approve ${study.manifestSha256}\` (this run)` : `\`fedlhs-agent approve ${study.manifestSha256}\``;
        this.log.warn({ event: 'study.awaiting_approval', studyId: study.studyId, manifestSha256: study.manifestSha256, detail }, `study ${study.studyId} awaits approval (${detail}): run \`fedlhs-agent review\`, then ${how}`);
      } else {
        this.log.info({ event: 'readiness.sent', studyId: study.studyId, readiness, detail }, 'readiness');
      }
      const sent = { studyId: study.studyId, manifestSha256: study.manifestSha256, readiness, detail, trainingRows, ...(privacy === undefined ? {} : { privacy }) };
      this.send({ readiness: sent });
      this.state.audit({
        event: 'readiness_sent', coordinator: this.config.coordinator.address, studyId: study.studyId, outcome: readiness, detail,
        sent: { readiness: sent },
      });
    }
  }

  /** Picks up approvals given with `fedlhs-agent approve` while the agent runs. */
  recheckApprovals(): void {
    for (const known of this.studies.values()) {
      if (known.readiness === 'READINESS_NOT_APPROVED' && this.approval(known.study.studyId, known.study.manifestSha256).approved) void this.evaluateReadiness(known, false);
    }
  }

  /**
   * Dissemination for a clinic that was offline when a study it approved completed: after each
   * Welcome, fetch the final model of every completed, locally approved study not yet saved.
   */
  private async catchUpFinalModels(): Promise<void> {
    try {
      const res = await new Promise<ListStudiesResponse__Output>((resolve, reject) => {
        this.clients.federation.ListStudies({ includeEnded: true }, authMetadata(this.credential.credential), { deadline: deadlineIn(15_000) }, (err, r) => (err === null ? resolve(r!) : reject(err)));
      });
      for (const study of res.studies) {
        if (study.state !== 'STUDY_STATE_COMPLETED' || !isApproved(this.state, study.manifestSha256)) continue;
        if (existsSync(join(this.state.dir, 'models', study.studyId, `round-${study.lastCommittedRound}.f32`))) continue;
        await this.fetchFinalModel(study);
      }
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, 'could not check for completed studies');
    }
  }

  /** Dissemination: keeps the final global model of a completed study this clinic took part in. */
  private async fetchFinalModel(study: Study__Output): Promise<void> {
    try {
      // The header's tensor list is authoritative here: the digest proves the payload.
      const { weights, sha256, specs } = await downloadModel(this.clients.federation, this.credential.credential, { committed: { studyId: study.studyId, round: study.lastCommittedRound } }, undefined, 600_000);
      const dir = join(this.state.dir, 'models', study.studyId);
      writeFileAtomic(join(dir, `round-${study.lastCommittedRound}.f32`), float32Bytes(weights));
      writeFileAtomic(join(dir, `round-${study.lastCommittedRound}.json`), JSON.stringify({ studyId: study.studyId, round: study.lastCommittedRound, sha256: sha256.toString('hex'), manifestSha256: study.manifestSha256, tensors: specs }, null, 1));
      this.log.info({ event: 'final_model.saved', studyId: study.studyId, round: study.lastCommittedRound, path: dir }, 'study completed; final global model saved locally');
    } catch (err) {
      if ((err as { code?: number }).code === grpc.status.PERMISSION_DENIED) {
        // The coordinator does not count this clinic as a participant (it approved the study
        // only after the study ended): said once, not at every reconnection.
        if (this.finalModelRefused.has(study.studyId)) return;
        this.finalModelRefused.add(study.studyId);
      }
      this.log.warn({ event: 'final_model.failed', studyId: study.studyId, err: (err as Error).message }, 'could not fetch the final model');
    }
  }
}
