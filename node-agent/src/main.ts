#!/usr/bin/env node
import { pinReleaseKey, type PinnedReleaseKey } from './release-pin.js';
import { readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import * as grpc from '@grpc/grpc-js';
import { isFedlhsError, parseManifest, validateManifest, validateSeriesTemplate, verifyManifestJson, type StudyManifest } from '@fedlhs/core';
import { initBackend } from '@fedlhs/model';
import type { ListStudiesResponse__Output } from '@fedlhs/proto';
import { createLogger, forTerminal, logProcessWarnings, prepareArgv, terminalWriter, writeFileAtomic } from '@fedlhs/service';
import { Command } from 'commander';
import { AGENT_VERSION, Agent } from './agent.js';
import { AgentState } from './agent-state.js';
import { armFailpoints } from './failpoints.js';
import { authMetadata, createClients, deadlineIn } from './connection.js';
import { loadAgentConfig, withEnrolment, type AgentConfig } from './config.js';
import { formatChanges, formatManifest, formatRun, formatSeries } from './review.js';
import { checkAnnouncedTemplate, isApproved, rememberTemplate, runApproval } from './series-approval.js';
import { dataQualityReport } from './data-check.js';
import type { AgentCli } from './cli-kit.js';
import { registerReleaseCommands } from './releases/commands.js';
import { registerScoringCommands } from './scoring/commands.js';
import { registerPrivacyCommand } from './privacy-cli.js';
import { registerAuditCommand } from './audit-cli.js';
import { NodeCertificateFiles, NodeCertificateProvider } from './certificates.js';
import { CertificateRenewer, enrolmentRequest, keepEnrolmentCertificate, nodeCertificateCredentials, withNodeCertificate } from './certificates-renewal.js';

// Everything this CLI prints goes through these (forTerminal): manifests, study names, error
// details and audit entries hold text the coordinator or the data chose, which must not move
// the cursor or draw lines of its own.
const out = terminalWriter(process.stdout);
const errOut = terminalWriter(process.stderr);
/** A value inside a line: escaped with its line feeds, so it cannot start a line of its own. */
const v = (text: string | number | undefined): string => forTerminal(String(text ?? ''));

function die(message: string, code = 1): never {
  process.stderr.write(`fedlhs-agent: ${forTerminal(message, { newlines: true })}\n`);
  process.exit(code);
}

/**
 * The configuration of a command. Except for `enrol`, settings left at their defaults take what
 * enrolment recorded (coordinator address, TLS mode, CA, server name).
 */
function config(options: { config?: string }, command: Command): AgentConfig {
  let c: AgentConfig;
  try {
    c = loadAgentConfig({ file: options.config, args: command.args });
  } catch (err) {
    if (isFedlhsError(err, 'CONFIG_INVALID')) die(`invalid configuration: ${err.message}`, 2);
    throw err;
  }
  if (command.name() === 'enrol') return c;
  const state = new AgentState(c.stateDir);
  let credential;
  try {
    credential = state.loadCredential();
  } catch {
    return c; // the command itself reports an unreadable credential
  }
  // The node certificate from the coordinator (tls.clientCertificates 'issued'), unless tls.cert names another.
  return withNodeCertificate(withEnrolment(c, credential === undefined ? undefined : { address: credential.coordinator, tls: credential.tls }, state.caPath));
}

function tlsOf(c: AgentConfig) {
  return { mode: c.tls.mode, ca: c.tls.ca, cert: c.tls.cert, key: c.tls.key, serverName: c.tls.serverName };
}

const program = new Command('fedlhs-agent').description("fedlhs clinic node agent: trains the study's model on this clinic's data; only weights and aggregate metrics leave.");

function withConfig(name: string, description: string): Command {
  return program
    .command(name)
    .description(`${description} (every config key is also a flag, e.g. --state-dir, --coordinator; see README)`)
    .option('--config <file>', 'JSON config file')
    .allowUnknownOption(true)
    .allowExcessArguments(true);
}

withConfig('enrol', 'trade a one-time join token for this node\'s credential').action(async (options: { config?: string }, command: Command) => {
  const c = config(options, command);
  if (c.joinToken === '') die('a join token is required: --join-token <token> (or FEDLHS_JOIN_TOKEN)', 2);
  if (c.site === '') die('the site name is required: --site <name> (or FEDLHS_SITE)', 2);
  const state = new AgentState(c.stateDir);
  const existing = state.loadCredential();
  if (existing !== undefined) die(`already enrolled as ${existing.nodeId} (site ${existing.siteName}); remove ${state.credentialPath} to enrol again`, 2);
  const backend = await initBackend(c.backend);
  let certificate: { sha256: string; names: string[] } | undefined;
  const clients = createClients(c.coordinator.address, { ...tlsOf(c), onServerCertificate: (seen) => (certificate = seen) });
  try {
    // Several coordinators: enrol with the one serving (a standby refuses with NOT_LEADER).
    await clients.select();
    // A key and a request for a client certificate: a coordinator that issues node certificates needs one.
    const certificateRequest = enrolmentRequest(c.tls.mode);
    const r = await new Promise<{ nodeId: string; nodeCredential: string; siteName: string; releasePublicKey: string; releaseKeyFingerprint: string; clientCertificate: string; clientCaCertificate: string }>((resolve, reject) => {
      clients.enrolment.Enrol(
        { joinToken: c.joinToken, siteName: c.site, agent: { agentVersion: AGENT_VERSION, trainingBackend: backend.backend, platform: process.platform }, certificateSigningRequest: certificateRequest?.csrPem ?? '' },
        { deadline: deadlineIn(30_000) },
        (err, res) => (err === null ? resolve(res!) : reject(err)),
      );
    });
    // Later commands dial the same coordinator the same way without being told again.
    if (c.tls.mode === 'tls' && c.tls.ca !== '') writeFileAtomic(state.caPath, readFileSync(c.tls.ca), 0o644);
    const tls = { mode: c.tls.mode, caFile: c.tls.mode === 'tls' && c.tls.ca !== '' ? 'coordinator-ca.pem' : '', serverName: c.tls.serverName, certificateSha256: certificate?.sha256 };
    // The release key is pinned now or never: a key that does not check out is not kept (the
    // credential is, since the join token is spent), and enrolment says so and fails.
    let releaseKey: PinnedReleaseKey | undefined;
    let releaseKeyError: string | undefined;
    try {
      releaseKey = pinReleaseKey(r.releasePublicKey, r.releaseKeyFingerprint);
    } catch (err) {
      releaseKeyError = (err as Error).message;
    }
    state.saveCredential({ nodeId: r.nodeId, siteName: r.siteName, coordinator: c.coordinator.address, credential: r.nodeCredential, enrolledAt: new Date().toISOString(), tls, releaseKey });
    state.audit({
      event: 'enrolled', coordinator: c.coordinator.address, detail: `node ${r.nodeId}, site ${r.siteName}`,
      sent: { enrol: { joinToken: '(the one-time join token)', siteName: c.site, agent: { agentVersion: AGENT_VERSION, trainingBackend: backend.backend, platform: process.platform } } },
    });
    out(`enrolled as ${v(r.nodeId)} (site ${v(r.siteName)}) with ${c.coordinator.address}; credential saved to ${state.credentialPath} (mode 0600)\n`);
    const nodeCertificate = keepEnrolmentCertificate(c.stateDir, state, c.coordinator.address, r.nodeId, certificateRequest?.keyPem, r);
    if (nodeCertificate !== undefined) {
      out(`client certificate issued by the coordinator (serial ${nodeCertificate.serial}, valid until ${new Date(nodeCertificate.notAfter).toISOString()}; renewed automatically) saved to ${new NodeCertificateFiles(c.stateDir).certificatePath}\n`);
    }
    if (certificate !== undefined) {
      out(`coordinator certificate SHA-256 ${certificate.sha256} (for ${certificate.names.join(', ')}): compare it with the hospital's, out of band\n`);
    }
    if (releaseKey !== undefined) {
      out(`coordinator release key fingerprint ${releaseKey.fingerprint}: compare it with the hospital's, out of band; model releases are verified against this key only\n`);
    } else if (releaseKeyError === undefined) {
      errOut('warning: the coordinator sent no release key (an older coordinator): model releases from it cannot be verified\n');
    }
    out(`later commands (run, review, status) use this coordinator${c.tls.ca !== '' ? ' and CA' : ''} without --coordinator${c.tls.ca !== '' ? ' or --tls-ca' : ''}\n`);
    if (releaseKeyError !== undefined) die(`enrolled, but the coordinator's release key was refused and not pinned: ${releaseKeyError}`);
  } catch (err) {
    const e = err as grpc.ServiceError;
    die(`enrolment failed: ${e.details ?? e.message}`);
  } finally {
    clients.close();
  }
});

withConfig('run', 'connect to the coordinator and take part in approved studies').action(async (options: { config?: string }, command: Command) => {
  const c = config(options, command);
  const logger = createLogger({ app: 'fedlhs-agent', level: c.log.level, pretty: c.log.pretty });
  // Warnings such as a cut audit log (FEDLHS_AUDIT_CHAIN_GAP) reach the log, not only stderr.
  logProcessWarnings(logger);
  const state = new AgentState(c.stateDir);
  let credential;
  try {
    credential = state.loadCredential();
  } catch (err) {
    die((err as Error).message, 2);
  }
  if (credential === undefined) die(`not enrolled: run \`fedlhs-agent enrol --join-token <token> --site <name>\` first (state dir ${c.stateDir})`, 2);
  if (c.tls.mode === 'plaintext') {
    logger.warn({ event: 'tls.disabled', tlsMode: 'plaintext' }, '!!! TLS IS DISABLED: the node credential and model weights travel unencrypted. Loopback demos and tests only. !!!');
  }
  if (c.autoApprove) {
    logger.warn({ event: 'agent.auto_approve', autoApprove: true }, '!!! AUTO-APPROVE IS ON: every study manifest is approved without operator review. Demos and simulations only. !!!');
  }
  try {
    // Test fault injection (FEDLHS_FAILPOINTS): a bad value stops the agent naming it; armed ones are logged loudly and audited.
    armFailpoints({ log: logger, state, coordinator: c.coordinator.address });
  } catch (err) {
    die((err as Error).message, 2);
  }
  const backend = await initBackend(c.backend);
  logger.info({ trainingBackend: backend.backend, unavailable: backend.attempts, nodeId: credential.nodeId, site: credential.siteName, coordinator: c.coordinator.address, agentVersion: AGENT_VERSION }, `TensorFlow.js backend: ${backend.backend}`);
  // A node certificate from the coordinator is presented through a provider, so that connections
  // opened after a renewal present the renewed one.
  const certFiles = new NodeCertificateFiles(c.stateDir);
  const nodeCertificate = c.tls.mode === 'tls' && c.tls.cert === certFiles.certificatePath ? certFiles.load(credential.nodeId) : undefined;
  if (nodeCertificate !== undefined && nodeCertificate.notAfter <= Date.now()) {
    die(`the client certificate the coordinator issued (${certFiles.certificatePath}) expired on ${new Date(nodeCertificate.notAfter).toISOString()} while the agent was not running; the coordinator refuses it, so it cannot be renewed: enrol again with a new join token`, 3);
  }
  const provider = nodeCertificate === undefined ? undefined : new NodeCertificateProvider(c.tls.ca, nodeCertificate);
  const clients = createClients(c.coordinator.address, tlsOf(c), provider === undefined ? undefined : nodeCertificateCredentials(tlsOf(c), provider));
  const agent = new Agent(c, state, credential, clients, logger, backend.backend);
  const renewer = provider === undefined || nodeCertificate === undefined ? undefined : new CertificateRenewer({
    nodeId: credential.nodeId, credential: credential.credential, coordinator: c.coordinator.address, files: certFiles, provider, current: nodeCertificate,
    federation: () => clients.federation, state, log: logger,
  });
  renewer?.start();
  const controller = new AbortController();
  const stop = (signal: string): void => {
    logger.info({ signal }, 'stopping agent');
    controller.abort();
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
  try {
    await agent.run(controller.signal);
  } catch (err) {
    // The coordinator refused this node's credential (control-session.ts): retrying cannot help.
    if (isFedlhsError(err, 'CREDENTIAL_REJECTED')) {
      logger.fatal({ event: 'agent.credential_rejected' }, err.message);
      clients.close();
      process.exit(3);
    }
    throw err;
  }
  renewer?.stop();
  clients.close();
  state.close();
  process.exit(0);
});

withConfig('review', 'show study manifests waiting for this clinic\'s approval, and what changed').option('--all', 'also show approved manifests').action(async (options: { config?: string; all?: boolean }, command: Command) => {
  const c = config(options, command);
  const state = new AgentState(c.stateDir);
  const credential = state.loadCredential();
  if (credential !== undefined) {
    const clients = createClients(c.coordinator.address, tlsOf(c));
    try {
      await clients.select();
      const res = await new Promise<ListStudiesResponse__Output>((resolve, reject) => {
        clients.federation.ListStudies({ includeEnded: false }, authMetadata(credential.credential), { deadline: deadlineIn(15_000) }, (err, r) => (err === null ? resolve(r!) : reject(err)));
      });
      for (const s of res.studies) {
        // Kept (and shown for approval) only under the hash its bytes have: a manifest that does not
        // hash to what it claims must never be approved under that hash (review of issue 13).
        let m: StudyManifest;
        try {
          m = verifyManifestJson(s.manifestJson, s.manifestSha256);
        } catch (err) {
          errOut(`warning: study ${v(s.studyId)}: its manifest was refused (${v((err as Error).message)}); it is not shown and cannot be approved\n`);
          continue;
        }
        state.recordManifest({ hash: s.manifestSha256, studyId: s.studyId, name: m.name, json: s.manifestJson });
        // A series run's template is kept only when it checks out against its hash (series-approval.ts).
        const check = checkAnnouncedTemplate(s, m);
        if (check.kind === 'ok') rememberTemplate(state, check);
        else if (check.kind === 'refused') errOut(`warning: study ${v(s.studyId)}: its series template was refused (${v(check.reason)}); the run can only be approved by its own manifest hash\n`);
      }
    } catch (err) {
      errOut(`(could not reach the coordinator: ${v((err as grpc.ServiceError).details ?? (err as Error).message)}; showing manifests seen earlier)\n`);
    } finally {
      clients.close();
    }
  }
  // Series first: one approval covers every run that changes only what the series lets vary.
  const runs = state.listManifests().flatMap((rec) => {
    const m = validateManifest(JSON.parse(rec.json));
    return m.series === undefined ? [] : [{ rec, m, approval: runApproval(state, rec.hash, m, true) }];
  });
  const templates = state.listSeriesTemplates();
  if (templates.length > 0 || runs.length > 0) {
    out(`study series: ${templates.length} seen, ${templates.filter((t) => t.approvedAt !== null).length} approved\n\n`);
    for (const rec of templates) {
      try {
        out(`${formatSeries(validateSeriesTemplate(JSON.parse(rec.json)), rec)}\n`);
      } catch (err) {
        out(`Series ${v(rec.name)} (template ${rec.hash}): its kept template no longer reads: ${v((err as Error).message)}\n`);
      }
      const own = runs.filter((r) => r.m.series?.templateSha256 === rec.hash).sort((a, b) => a.m.series!.run - b.m.series!.run);
      out(own.length === 0 ? '  runs             none seen yet\n\n' : `  runs (${own.length}):\n${own.map((r) => formatRun(r.m, r.rec.hash, r.rec.studyId, r.approval)).join('\n')}\n\n`);
    }
    const orphans = runs.filter((r) => !templates.some((t) => t.hash === r.m.series?.templateSha256));
    if (orphans.length > 0) out(`runs of series whose template was not seen here (approve each run by its manifest):\n${orphans.map((r) => formatRun(r.m, r.rec.hash, r.rec.studyId, r.approval)).join('\n')}\n\n`);
  }
  const manifests = state.listManifests().filter((m) => options.all === true || !isApproved(state, m.hash));
  if (manifests.length === 0) {
    out('no study manifests waiting for approval\n');
    return;
  }
  for (const rec of manifests) {
    const m = validateManifest(JSON.parse(rec.json));
    out(`${formatManifest(m, rec.hash, rec.studyId, c.privacy)}\n`);
    const previous = state.previousApproved(rec.name, rec.hash);
    if (previous !== undefined) out(`${formatChanges(validateManifest(JSON.parse(previous.json)), m, previous.hash)}\n`);
    const approval = runApproval(state, rec.hash, m, true);
    if (rec.approvedAt !== null) out(`  status           approved ${new Date(rec.approvedAt).toISOString()} by ${v(rec.approvedBy ?? '')}\n\n`);
    else if (approval.approved) out(`  status           approved: ${v(approval.detail)}\n\n`);
    else out(`  status           PENDING — ${m.series === undefined ? '' : `${v(approval.detail)}; `}approve with: fedlhs-agent approve ${rec.hash}\n\n`);
  }
});

withConfig('approve', 'approve a study manifest, or a study series (all its runs that change only what the series lets vary), by its sha256 or a unique prefix of it (at least 8 hex digits), as printed by review')
  .argument('<hash>', 'the manifest or series template sha256, or a unique prefix of at least 8 hex digits')
  .action(async (given: string, options: { config?: string }, command: Command) => {
    if (!/^[0-9a-f]{8,64}$/.test(given)) die(`${JSON.stringify(given)} is not a manifest sha256 or a prefix of one (8 to 64 lowercase hex digits), nor a series template's`, 2);
    const c = config(options, command);
    const state = new AgentState(c.stateDir);
    let target;
    try {
      target = state.resolveApprovable(given);
    } catch (err) {
      die((err as Error).message, 2);
    }
    const hash = target.record.hash;
    let by = 'operator';
    try {
      by = `operator:${userInfo().username}`;
    } catch {
      // no user name (e.g. arbitrary uid in a container): keep the generic label
    }
    try {
      if (target.kind === 'series') {
        const already = target.record.approvedAt !== null;
        const t = state.approveSeriesTemplate(hash, by);
        if (!already) state.audit({ event: 'series_approved', coordinator: c.coordinator.address, sha256: hash, outcome: 'approved', detail: `series ${t.name} (template ${hash}) approved by ${by}`, series: { name: t.name, templateSha256: hash } });
        out(`${already ? 'already approved' : 'approved'}: series template of ${v(t.name)} (${hash}); its runs are approved while they change only what the series lets vary (see review); a running agent picks this up within one heartbeat\n`);
        return;
      }
      const m = state.approve(hash, by);
      out(`approved: study manifest of ${v(m.name)} (${hash}) for study ${v(m.studyId)}; a running agent picks this up within one heartbeat\n`);
    } catch (err) {
      die((err as Error).message, 2);
    }
  });

const data = program.command('data').description('local data checks (nothing leaves the clinic)');
data
  .command('check')
  .description('print a data-quality report of the local data, for a study manifest if given (counts, missingness, units, exclusions, rejected rows)')
  .option('--config <file>', 'JSON config file')
  .option('--manifest <file>', 'a study manifest file (JSON or YAML) to extract the cohort for')
  .option('--study <sha256>', 'a manifest this agent has seen (see review), by its sha256')
  .allowUnknownOption(true)
  .allowExcessArguments(true)
  .action(async (options: { config?: string; manifest?: string; study?: string }, command: Command) => {
    const c = config(options, command);
    if (c.data.path === '') die('no local data configured: set data.path (--data-path) and data.format (--data-format)', 2);
    let manifest;
    try {
      if (options.manifest !== undefined) manifest = parseManifest(readFileSync(options.manifest, 'utf8'));
      else if (options.study !== undefined) {
        const rec = new AgentState(c.stateDir).getManifest(options.study);
        if (rec === undefined) die(`no manifest ${options.study} in ${c.stateDir}; run \`fedlhs-agent review\` first`, 2);
        manifest = validateManifest(JSON.parse(rec.json));
      }
    } catch (err) {
      die((err as Error).message, 2);
    }
    out(await dataQualityReport(c, manifest));
  });

withConfig('status', 'enrolment, approvals and the audit log of what left this clinic').option('--last <n>', 'audit entries to show', '10').action(async (options: { config?: string; last: string }, command: Command) => {
  const c = config(options, command);
  const state = new AgentState(c.stateDir);
  const credential = state.loadCredential();
  out(credential === undefined ? `not enrolled (state dir ${c.stateDir})\n` : `node ${v(credential.nodeId)}, site ${v(credential.siteName)}, coordinator ${v(credential.coordinator)}, enrolled ${v(credential.enrolledAt)}\n`);
  if (credential?.tls !== undefined) {
    out(`  dialled with ${credential.tls.mode === 'plaintext' ? 'TLS OFF (plaintext)' : `TLS, CA ${credential.tls.caFile === '' ? 'system roots' : state.caPath}${credential.tls.serverName === '' ? '' : `, server name ${credential.tls.serverName}`}`}${credential.tls.certificateSha256 === undefined ? '' : `; coordinator certificate SHA-256 at enrolment ${credential.tls.certificateSha256}`}\n`);
  }
  if (credential !== undefined) out(`  release key ${credential.releaseKey === undefined ? 'not pinned (the coordinator sent none at enrolment)' : `pinned at enrolment, fingerprint ${credential.releaseKey.fingerprint}`}\n`);
  const certFiles = new NodeCertificateFiles(c.stateDir);
  if (credential !== undefined && certFiles.exists()) {
    try {
      const nc = certFiles.load(credential.nodeId);
      out(`  client certificate from the coordinator: serial ${nc.serial}, valid until ${new Date(nc.notAfter).toISOString()}${nc.notAfter <= Date.now() ? ' (EXPIRED: enrol again)' : ' (a running agent renews it)'}\n`);
    } catch (err) {
      out(`  client certificate from the coordinator: UNUSABLE: ${v((err as Error).message)}\n`);
    }
  }
  const manifests = state.listManifests();
  // A series run counts as approved when its series approval covers it (series-approval.ts).
  const approvedNow = new Set(manifests.filter((m) => isApproved(state, m.hash)).map((m) => m.hash));
  out(`\nmanifests: ${approvedNow.size} approved, ${manifests.length - approvedNow.size} pending\n`);
  for (const m of manifests) out(`  ${!approvedNow.has(m.hash) ? 'PENDING ' : 'approved'}  ${v(m.hash.slice(0, 16))}  ${v(m.name)}  (${v(m.studyId)})${m.approvedAt === null && approvedNow.has(m.hash) ? '  through its series' : ''}\n`);
  const audit = state.readAudit();
  const sent = audit.filter((a) => a.event === 'update_sent' && a.outcome?.startsWith('accepted') === true);
  const bytes = sent.reduce((s, a) => s + (a.bytes ?? 0), 0);
  out(`\naudit log ${state.auditPath}: ${audit.length} entries; ${sent.length} model update(s) sent (${bytes < 1048576 ? `${(bytes / 1024).toFixed(1)} KiB` : `${(bytes / 1048576).toFixed(2)} MiB`}), ${audit.filter((a) => a.event === 'evaluation_sent').length} evaluation(s)\n`);
  const n = Math.max(0, Number(options.last) || 0);
  for (const a of audit.slice(-n)) {
    out(`  ${v(a.time)}  ${v(a.event).padEnd(24)} ${v(a.studyId)} ${a.round === undefined ? '' : `round ${v(a.round)}`} ${a.bytes === undefined ? '' : `${v(a.bytes)} B`} ${a.sha256 === undefined ? '' : v(a.sha256.slice(0, 12))} ${v(a.outcome)}\n`);
  }
});

const cli: AgentCli = { withConfig, config, out, errOut, die, v };
registerReleaseCommands(cli);
registerScoringCommands(cli);
registerPrivacyCommand(cli);
registerAuditCommand(cli);

program.parseAsync([...process.argv.slice(0, 2), ...prepareArgv(program, process.argv.slice(2))]).catch((err: unknown) => die((err as Error).message));
