#!/usr/bin/env node
import { existsSync, readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { Command } from 'commander';
import { isFedlhsError } from '@fedlhs/core';
import { createLogger, forTerminal, logProcessWarnings, prepareArgv, terminalTable, terminalWriter } from '@fedlhs/service';
import { startCoordinatorApp } from './app.js';
import { startHaCoordinatorApp } from './ha/ha-app.js';
import { adminCall, resolveAdminTarget, type AdminTarget } from './cli-client.js';
import { loadCoordinatorConfig, type CoordinatorConfig } from './config.js';
import { DataDirLock } from './data-dir-lock.js';
import { resetPairCa } from './ha/pair-ca-reset.js';
import { storeTypes } from './store/postgres/connection.js';
import { loadOrCreateReleaseKey, retiredReleaseKeys, rotateReleaseKey, writePublicReleaseKey } from './release-key.js';
import type { StudyReadinessView } from './admin/views.js';
import type { ReleaseDetailView, ReleaseSummaryView } from './admin/release-views.js';
import { releaseDetailText, releaseListText } from './release-lines.js';
import type { PromotionView, SeriesDetailView, SeriesSummaryView } from './admin/series-views.js';
import { promotionLines, seriesDetailText, seriesListText } from './admin/series-lines.js';
import { studyReleaseLine, type StudyReleaseView } from './study-release-line.js';
import { registerAuditCommand } from './audit/cli.js';

interface StudySummary {
  id: string;
  name: string;
  state: string;
  totalRounds: number;
  lastCommittedRound: number;
  manifestSha256: string;
  current: { round: number; attempt: number; state: string } | null;
  reason: string | null;
}
interface StudyDetailView extends StudySummary {
  rounds: { round: number; attempt: number; state: string; participants: number; reason: string | null }[];
  timeline: { round: number; attempt: number; failures: { siteName: string; kind: string; state: string; reason: string }[] }[];
  sites: Record<string, string>;
  readiness: StudyReadinessView | null;
  metrics: { round: number; nodeId: string | null; phase: string; loss: number; accuracy: number; auc?: number }[];
  contributions: { round: number; nodeId: string; accepted: boolean; reasonCode: string | null; reason: string | null }[];
  statistics: { nodeId: string; rows: number | null; prevalence: number | null }[];
  normalization: {
    fallback: string;
    features: { name: string; mean: number; std: number; source: string; withheldAt: number | null }[];
    fallbackFeatures: { name: string; source: string; withheldAt: number | null }[];
  } | null;
  metricsWithheld?: { round: number; nodeId: string }[];
  /** The study's release, why it could not be made, or null (older coordinators send none). */
  release?: StudyReleaseView;
}


interface NodeSummary {
  id: string;
  siteName: string;
  online: boolean;
  revoked: boolean;
  trainingBackend: string;
  agentVersion: string;
  lastSeenAt: string | null;
  lastHeartbeatAt: string | null;
  lastError: { studyId: string; round: number; kind: string | null; state: string; reason: string; at: string | null } | null;
}

const PHASE: Record<string, string> = { TRAIN: 'training', EVALUATE: 'evaluation', STATISTICS: 'statistics' };

// Everything this CLI prints goes through these (forTerminal): the text of a site name, a
// readiness detail, a failure reason or an error message is chosen by a clinic's agent or
// echoed by the server, and must not move the cursor or draw rows of its own.
const out = terminalWriter(process.stdout);
const errOut = terminalWriter(process.stderr);

function die(message: string, code = 1): never {
  process.stderr.write(`fedlhs-coordinator: ${forTerminal(message, { newlines: true })}\n`);
  process.exit(code);
}

/** Aligned columns; every cell escaped (terminalTable). */
const table = terminalTable;
/** A value inside a line: escaped with its line feeds, so it cannot start a line of its own. */
const v = (text: string | number): string => forTerminal(String(text));

/** An agent-supplied text cut for a terminal line. */
function clip(text: string, max = 120): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length <= max ? line : `${line.slice(0, max - 1)}…`;
}

/** "2026-11-29T10:00:00.000Z (4s ago)" */
function when(isoTime: string | null, now = Date.now()): string {
  if (isoTime === null) return '-';
  const s = Math.max(0, Math.round((now - Date.parse(isoTime)) / 1000));
  const ago = s < 120 ? `${s}s` : s < 7200 ? `${Math.round(s / 60)}m` : s < 172800 ? `${Math.round(s / 3600)}h` : `${Math.round(s / 86400)}d`;
  return `${isoTime} (${ago} ago)`;
}

/** Each site's readiness for a running study, with its reason. */
function readinessLines(title: string, r: StudyReadinessView): string {
  const head = `${title}: ${r.ready} of ${r.needed} READY clinic(s) needed${r.deadline === null ? '' : `; the study fails at ${r.deadline} if still short (deadlines.readinessSeconds)`}`;
  if (r.sites.length === 0) return `${head}\n  no clinic enrolled\n`;
  const omitted = (r.sitesOmitted ?? 0) > 0 ? `  … and ${r.sitesOmitted} more site(s) (${Object.entries(r.counts ?? {}).map(([k, v]) => `${v} ${k}`).join(', ')}); \`fedlhs-coordinator study show\` lists every site\n` : '';
  // The clinics' own privacy accounting (issue 14), in a column of its own when any site reports one.
  const privacy = r.sites.some((x) => x.privacy !== undefined);
  return `${head}\n${table([['  SITE', 'READINESS', 'REASON', ...(privacy ? ['PRIVACY'] : [])], ...r.sites.map((x) => [`  ${x.siteName}`, x.readiness, clip(x.detail), ...(privacy ? [x.privacy?.text ?? '-'] : [])])])}\n${omitted}`;
}

function studyRows(studies: StudySummary[]): string[][] {
  return [
    ['STUDY', 'STATE', 'ROUND', 'NOW', 'MANIFEST'],
    ...studies.map((s) => [
      s.id, s.state, `${s.lastCommittedRound}/${s.totalRounds}`,
      s.current === null ? clip(s.reason ?? '-', 72) : `round ${s.current.round} ${s.current.state}${s.current.attempt > 1 ? ` (attempt ${s.current.attempt})` : ''}`,
      s.manifestSha256.slice(0, 12),
    ]),
  ];
}

/** The coordinator's configuration from `--config`, flags and FEDLHS_*; an invalid one exits 2 naming what is wrong. */
function configOrDie(options: { config?: string }, command: Command): CoordinatorConfig {
  try {
    return loadCoordinatorConfig({ file: options.config, args: command.args });
  } catch (err) {
    if (isFedlhsError(err, 'CONFIG_INVALID')) die(`invalid configuration: ${err.message}`, 2);
    throw err;
  }
}

const program = new Command('fedlhs-coordinator').description('fedlhs coordinator: runs federated-averaging studies for a network of clinics.');

program
  .command('serve')
  .description('run the coordinator (gRPC for agents, admin HTTP API for operators)')
  .option('--config <file>', 'JSON config file (keys as in the README); environment and flags override it')
  .allowUnknownOption(true)
  .allowExcessArguments(true)
  .addHelpText(
    'after',
    '\nEvery configuration key is also a flag (--grpc-port 0, --tls-mode plaintext, --data-dir ...) and an environment variable; see the README.' +
      '\nState lives in SQLite inside --data-dir by default; --store postgres --store-url postgres://... (or FEDLHS_STORE_URL, which keeps the password out of ps) uses PostgreSQL.',
  )
  .action(async (options: { config?: string }, command: Command) => {
    const config = configOrDie(options, command);
    const logger = createLogger({ app: 'fedlhs-coordinator', level: config.log.level, pretty: config.log.pretty });
    logProcessWarnings(logger);
    let app: { shutdown(): Promise<void> };
    try {
      // ha.enabled: active/standby on PostgreSQL (ha/ha-app.ts); otherwise one coordinator, as before.
      app = config.ha.enabled ? await startHaCoordinatorApp(config, logger) : await startCoordinatorApp(config, logger);
    } catch (err) {
      logger.fatal({ event: 'coordinator.start_failed', err }, 'coordinator failed to start');
      // A value checked only at start (admin.token) is still a configuration error.
      if (isFedlhsError(err, 'CONFIG_INVALID')) die(`invalid configuration: ${err.message}`, 2);
      die(`cannot start: ${(err as Error).message}`);
    }
    const stop = (signal: string): void => {
      logger.info({ signal }, 'signal received');
      app.shutdown().then(() => process.exit(0), (err: unknown) => {
        logger.error({ event: 'coordinator.shutdown_failed', err }, 'shutdown failed');
        process.exit(1);
      });
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });

const releaseKey = program.command('release-key').description("the coordinator's Ed25519 release signing key in <data-dir>/release-key.pem (agents pin it at enrolment)");
releaseKey
  .command('show')
  .description('print the release key fingerprint (to compare with a clinic\'s, out of band) and the retired keys kept for verifying old releases')
  .requiredOption('--data-dir <dir>', 'coordinator data directory')
  .action((options: { dataDir: string }) => {
    if (!existsSync(join(options.dataDir, 'release-key.pem'))) die(`no release key in ${options.dataDir}: it is created when the coordinator first starts there`, 2);
    const { key } = loadOrCreateReleaseKey(options.dataDir);
    const pub = writePublicReleaseKey(options.dataDir, key);
    out(`release key fingerprint ${key.fingerprint}\npublic key ${pub} (give it to clinics; they pin it with \`fedlhs-agent release-key pin\` after comparing the fingerprint)\n`);
    for (const f of retiredReleaseKeys(options.dataDir)) out(`retired key ${f} (public key kept to verify old releases)\n`);
  });
releaseKey
  .command('rotate')
  .description('replace the release key with a new one (the coordinator must be stopped); its public key is kept to verify old releases, and clinics pin the new one with `fedlhs-agent release-key pin`')
  .requiredOption('--data-dir <dir>', 'coordinator data directory')
  .action((options: { dataDir: string }) => {
    let lock: DataDirLock;
    try {
      // The running coordinator holds the key in memory: rotating under it would sign with a key nobody pinned.
      lock = DataDirLock.acquire(options.dataDir);
    } catch (err) {
      die(`cannot rotate the release key: ${(err as Error).message}`);
    }
    try {
      const { previous, current } = rotateReleaseKey(options.dataDir);
      const pub = writePublicReleaseKey(options.dataDir, current);
      out(`release key rotated: ${previous} -> ${current.fingerprint}\npublic key ${pub}\n`);
      errOut(`clinics pinned the old key: until each pins the new one, it refuses new releases (signature). Give them ${pub} and the fingerprint out of band; each runs\n  fedlhs-agent release-key pin --public-key release-key.pub.pem --fingerprint ${current.fingerprint}\n`);
    } finally {
      lock.release();
    }
  });

const nodeCa = program.command('ca').description("the node CA of an active/standby pair (tls.clientCertificates 'issued' with ha.enabled): <data-dir>/ca on each machine, recorded in the database");
nodeCa
  .command('reset')
  .description("retire the pair's node CA so that the next coordinator to start makes a new one (to renew an expiring CA, or when no machine has ca.key any more); run with this machine's coordinator stopped, on each machine of the pair; audited (admin action ca.reset). Every node then enrols again with a new join token. Without --confirm it only shows what it would do")
  .option('--config <file>', 'the JSON config file the coordinator serves with; other flags and FEDLHS_* as for serve')
  .option('--confirm <fingerprint>', "the fingerprint of the CA to retire (as the start-up error or the dry run prints it)")
  .allowUnknownOption(true)
  .allowExcessArguments(true)
  .action(async (options: { config?: string; confirm?: string }, command: Command) => {
    const config = configOrDie(options, command);
    if (config.tls.clientCertificates !== 'issued') die("ca reset: this coordinator does not issue node certificates (tls.clientCertificates is not 'issued')", 2);
    if (!config.ha.enabled) die(`ca reset: only for ha.enabled (a single coordinator records no CA in its database): stop it, move ${join(config.dataDir, 'ca')} away and start it; every node then enrols again`, 2);
    let lock: DataDirLock;
    try {
      // The running coordinator holds the CA in memory and would record its files again.
      lock = DataDirLock.acquire(config.dataDir);
    } catch (err) {
      die(`cannot reset the node CA: ${(err as Error).message}`);
    }
    const pool = new pg.Pool({ connectionString: config.store.url, types: storeTypes, max: 1 });
    try {
      const dryRun = options.confirm === undefined;
      const r = await resetPairCa({ dataDir: config.dataDir, confirm: options.confirm ?? '', operator: `cli:${userInfo().username}`, pool, dryRun });
      const recorded = r.recorded === undefined ? 'the database records no node CA' : `the database records node CA ${r.recorded.fingerprint} (since ${new Date(r.recorded.recordedAt).toISOString()})`;
      const local = r.local === undefined ? `${join(config.dataDir, 'ca')} holds no CA` : `${join(config.dataDir, 'ca')} holds node CA ${r.local}`;
      if (dryRun) {
        out(`${recorded}; ${local}\n`);
        const fp = r.recorded?.fingerprint ?? r.local;
        errOut(fp === undefined ? 'nothing to reset\n' : `to retire it: run the same command with --confirm ${fp}\n`);
        return;
      }
      out(`${recorded}: ${r.cleared ? 'cleared (audited: ca.reset)' : 'left as it is'}; ${local}: ${r.movedTo === undefined ? 'nothing moved' : `moved to ${r.movedTo}`}\n`);
      errOut('run this on the other machine of the pair too, then start one coordinator (it makes and records a new CA), copy its <data-dir>/ca/ca.key (mode 0600) and ca.crt to the other, and start that one. Every node enrols again with a new join token; revoke the old nodes once they have\n');
    } catch (err) {
      die(`cannot reset the node CA: ${(err as Error).message}`);
    } finally {
      await pool.end().catch(() => undefined);
      lock.release();
    }
  });

function adminCommand(name: string, description: string): Command {
  return program
    .command(name)
    .description(description)
    .option('--admin-url <url>', 'admin API URL (env FEDLHS_ADMIN_URL; default http://127.0.0.1:7480)')
    .option('--admin-token <token>', 'admin token (env FEDLHS_ADMIN_TOKEN; default: <data-dir>/admin-token)')
    .option('--data-dir <dir>', 'coordinator data directory, to find the admin token file');
}

function target(command: Command): AdminTarget {
  try {
    return resolveAdminTarget(command.optsWithGlobals(), process.env);
  } catch (err) {
    die((err as Error).message, 2);
  }
}

const token = adminCommand('token', 'join tokens for enrolling clinic agents');
token
  .command('create')
  .description('issue a one-time join token for a site')
  .requiredOption('--site <name>', 'site (clinic) name the token is for')
  .option('--ttl-hours <hours>', 'hours until the token expires', '24')
  .action(async (options: { siteName?: string; site: string; ttlHours: string }, command: Command) => {
    const hours = Number(options.ttlHours);
    if (!Number.isFinite(hours) || hours <= 0) die(`--ttl-hours ${JSON.stringify(options.ttlHours)} must be a positive number`, 2);
    const r = await adminCall<{ token: string; site: string; expiresAt: string }>(target(command), 'POST', '/api/v1/join-tokens', {
      site: options.site,
      ttlSeconds: Math.round(hours * 3600),
    });
    out(`${r.token}\n`);
    errOut(`join token for site "${v(r.site)}", valid once until ${r.expiresAt}. Give it to the clinic: fedlhs-agent enrol --join-token <token>\n`);
  });

const study = adminCommand('study', 'start, stop and list studies');
study
  .command('start <manifest>')
  .description('start a study from a manifest file (JSON or YAML)')
  .action(async (file: string, _options: unknown, command: Command) => {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      die(`cannot read manifest ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 2);
    }
    const s = await adminCall<StudySummary>(target(command), 'POST', '/api/v1/studies', { manifest: text });
    out(`${s.id}\n`);
    errOut(`study ${s.id} started: ${s.totalRounds} rounds, manifest sha256 ${s.manifestSha256}\nclinic operators approve it with: fedlhs-agent approve ${s.manifestSha256}\n`);
  });
study
  .command('stop <studyId>')
  .description('stop a running study (its current round fails; committed rounds stay)')
  .action(async (id: string, _options: unknown, command: Command) => {
    await adminCall(target(command), 'POST', `/api/v1/studies/${encodeURIComponent(id)}/stop`);
    out(`study ${v(id)} stopped\n`);
  });
study
  .command('show <studyId>')
  .description("a study's rounds, per-clinic cohort sizes and prevalence, normalisation fallbacks, and rejected contributions")
  .action(async (id: string, _options: unknown, command: Command) => {
    const d = await adminCall<StudyDetailView>(target(command), 'GET', `/api/v1/studies/${encodeURIComponent(id)}`);
    const site = (nodeId: string): string => d.sites[nodeId] ?? nodeId;
    out(`${table(studyRows([d]))}\n\n`);
    if (d.reason !== null && d.state !== 'RUNNING') out(`reason: ${v(d.reason)}\n\n`);
    out(studyReleaseLine(d.state, d.release));
    if (d.readiness !== null) out(`${readinessLines('readiness', d.readiness)}\n`);
    if (d.statistics.length > 0) {
      out(`${table([['SITE', 'TRAIN RECORDS', 'PREVALENCE'], ...d.statistics.map((s) => [site(s.nodeId), s.rows === null || s.rows === 0 ? '<suppressed>' : String(s.rows), s.prevalence === null ? '<suppressed>' : `${(s.prevalence * 100).toFixed(1)}%`])])}\n\n`);
    }
    const fallbacks = d.normalization?.fallbackFeatures ?? [];
    if (fallbacks.length > 0) {
      const describe = (f: { name: string; source: string }): string => {
        const p = d.normalization!.features.find((x) => x.name === f.name);
        return f.source === 'excluded' ? 'excluded (constant 0 in the model)' : `scaled by its declared range (mean ${p?.mean}, SD ${p?.std})`;
      };
      out(`normalisation fallback (data.normalizationFallback ${d.normalization!.fallback}): statistics withheld at every clinic (small cells) for\n${fallbacks.map((f) => `  ${v(f.name)}: ${v(describe(f))}`).join('\n')}\n\n`);
    }
    const global = (r: number) => d.metrics.find((m) => m.round === r && m.phase === 'evaluation' && m.nodeId === null);
    out(`${table([['ROUND', 'ATTEMPT', 'STATE', 'CLINICS', 'LOSS', 'ACCURACY', 'AUC', 'REASON'], ...d.rounds.filter((r) => r.round > 0).map((r) => {
      const g = r.state === 'COMMITTED' ? global(r.round) : undefined;
      return [String(r.round), String(r.attempt), r.state, String(r.participants), g?.loss.toFixed(4) ?? '-', g?.accuracy.toFixed(3) ?? '-', g?.auc?.toFixed(3) ?? '-', r.reason ?? ''];
    })])}\n`);
    const failures = d.timeline.flatMap((t) => t.failures.map((f) => ({ ...f, round: t.round, attempt: t.attempt })));
    if (failures.length > 0) {
      out(`\ntasks that failed, were declined or rejected, by site:\n${table([['  SITE', 'ROUND', 'ATTEMPT', 'TASK', 'STATE', 'REASON'], ...failures
        .sort((a, b) => a.siteName.localeCompare(b.siteName) || a.round - b.round || a.attempt - b.attempt)
        .map((f) => [`  ${f.siteName}`, String(f.round), String(f.attempt), f.kind, f.state, clip(f.reason, 160)])])}\n`);
    }
    const rejected = d.contributions.filter((c) => !c.accepted);
    if (rejected.length > 0) out(`\nrejected contributions (updates and statistics reports):\n${rejected.map((c) => `  round ${c.round} ${v(site(c.nodeId))} ${v(c.reasonCode ?? '-')}: ${v(c.reason ?? '')}`).join('\n')}\n`);
  });
study
  .command('list')
  .description('list studies')
  .action(async (_options: unknown, command: Command) => {
    const r = await adminCall<{ studies: StudySummary[] }>(target(command), 'GET', '/api/v1/studies');
    out(`${table(studyRows(r.studies))}\n`);
  });

/** A release version argument: a whole number from 1 (exit 2 otherwise). */
function versionArg(text: string): number {
  const n = /^\d{1,9}$/.test(text) ? Number(text) : NaN;
  if (!(n >= 1)) die(`version ${JSON.stringify(text)}: a release version (a whole number from 1) is required`, 2);
  return n;
}
const releasePath = (name: string): string => `/api/v1/releases/${encodeURIComponent(name)}`;
type AliasChange = { studyName: string; alias: string; version: number | null; previous: number | null; operator: string };

const release = adminCommand('release', "the release registry: each finished study's signed releases, their aliases (champion, challenger, ...) and how they do at the clinics (every alias change is audited)");
release
  .command('list')
  .description('releases, newest first, with their selection rule, pooled validation and test AUC, aliases and live drift verdicts')
  .option('--study <name>', 'only the releases of this study name')
  .action(async (options: { study?: string }, command: Command) => {
    const query = options.study === undefined ? '' : `?study=${encodeURIComponent(options.study)}`;
    const r = await adminCall<{ releases: ReleaseSummaryView[] }>(target(command), 'GET', `/api/v1/releases${query}`);
    out(releaseListText(r.releases));
  });
release
  .command('show <name> <version>')
  .description("one release: why its round was chosen, its published validation and test figures, each site's live performance with the drift verdict and its reason, files and model card")
  .action(async (name: string, version: string, _options: unknown, command: Command) => {
    const r = await adminCall<ReleaseDetailView>(target(command), 'GET', `${releasePath(name)}/${versionArg(version)}`);
    out(releaseDetailText(r));
  });
release
  .command('alias <name> <alias> <version>')
  .description('point an alias (1-32 lowercase letters, digits or "-"; not a number) of a study name at a release version, moving it if set (admin)')
  .action(async (name: string, alias: string, version: string, _options: unknown, command: Command) => {
    const c = await adminCall<AliasChange>(target(command), 'PUT', `${releasePath(name)}/aliases/${encodeURIComponent(alias)}`, { version: versionArg(version) });
    out(`${v(c.studyName)}@${v(c.alias)} now names version ${c.version}${c.previous === null || c.previous === c.version ? '' : ` (was version ${c.previous})`}\n`);
  });
release
  .command('unalias <name> <alias>')
  .description('remove an alias of a study name (admin)')
  .action(async (name: string, alias: string, _options: unknown, command: Command) => {
    const c = await adminCall<AliasChange>(target(command), 'DELETE', `${releasePath(name)}/aliases/${encodeURIComponent(alias)}`);
    out(`${v(c.studyName)}@${v(c.alias)} removed (was version ${c.previous})\n`);
  });

const seriesPath = (name: string): string => `/api/v1/series/${encodeURIComponent(name)}`;
/** A series template file (JSON): its parsed object, or exit 2 naming what is wrong. */
function templateArg(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    die(`cannot read series template ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 2);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    die(`series template ${file} is not JSON: ${(err as Error).message}`, 2);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) die(`series template ${file} must be a JSON object (apiVersion, kind StudySeries, name, schedule, study, ...)`, 2);
  return value as Record<string, unknown>;
}
type SeriesRecordJson = { name: string; state: string; templateSha256: string };

const series = adminCommand('series', 'study series (continuous learning): a manifest template run on a schedule, each run a study whose release is compared with the champion (every action is audited)');
series
  .command('list')
  .description('series with their schedule, promotion rule, runs, champion and next run')
  .action(async (_options: unknown, command: Command) => {
    const r = await adminCall<{ series: SeriesSummaryView[] }>(target(command), 'GET', '/api/v1/series');
    out(seriesListText(r.series));
  });
series
  .command('show <name>')
  .description("one series: its template, runs (study, state, champion compared with, release, decision), champion history with each decision's reasons, and per-site test AUC over runs")
  .action(async (name: string, _options: unknown, command: Command) => {
    out(seriesDetailText(await adminCall<SeriesDetailView>(target(command), 'GET', seriesPath(name))));
  });
series
  .command('create <template>')
  .description('create a series from a template file (JSON, kind StudySeries); its first run starts at the next scheduled time (admin)')
  .action(async (file: string, _options: unknown, command: Command) => {
    const s = await adminCall<SeriesRecordJson>(target(command), 'POST', '/api/v1/series', templateArg(file));
    out(`${v(s.name)}\n`);
    errOut(`series ${v(s.name)} created (${s.state}), template sha256 ${s.templateSha256}\nclinic operators approve every run of it with: fedlhs-agent approve ${s.templateSha256}\n`);
  });
series
  .command('update <name> <template>')
  .description('replace the template of a series; runs already started keep theirs, and clinics must approve the new template (admin)')
  .action(async (name: string, file: string, _options: unknown, command: Command) => {
    const s = await adminCall<SeriesRecordJson>(target(command), 'PUT', seriesPath(name), templateArg(file));
    out(`series ${v(s.name)} updated, template sha256 ${s.templateSha256}\n`);
    errOut(`clinics approved the previous template only: they approve this one with: fedlhs-agent approve ${s.templateSha256}\n`);
  });
for (const [verb, description] of [['pause', 'stop starting runs of a series (a run in progress goes on) (admin)'], ['resume', 'start runs of a paused series again on its schedule (admin)']] as const) {
  series
    .command(`${verb} <name>`)
    .description(description)
    .action(async (name: string, _options: unknown, command: Command) => {
      const s = await adminCall<SeriesRecordJson>(target(command), 'POST', `${seriesPath(name)}/${verb}`);
      out(`series ${v(s.name)} is ${s.state}\n`);
    });
}
series
  .command('run-now <name>')
  .description('start the next run of a series now, without waiting for its schedule (admin)')
  .action(async (name: string, _options: unknown, command: Command) => {
    const r = await adminCall<{ seriesName: string; run: number; studyId: string; championVersion: number | null }>(target(command), 'POST', `${seriesPath(name)}/run-now`);
    out(`${v(r.studyId)}\n`);
    errOut(`run ${r.run} of series ${v(r.seriesName)} started as study ${v(r.studyId)}${r.championVersion === null ? '' : `, compared with champion v${r.championVersion}`}\n`);
  });
series
  .command('promote <name> <version>')
  .description("make a release of a series its champion (moves the series' champion alias; recorded with the run's evidence) (admin)")
  .action(async (name: string, version: string, _options: unknown, command: Command) => {
    const p = await adminCall<PromotionView>(target(command), 'POST', `${seriesPath(name)}/promote`, { version: versionArg(version) });
    out(`${promotionLines(p).join('\n')}\n`);
  });
series
  .command('rollback <name>')
  .description('point the champion of a series back at the champion before the current one (admin)')
  .action(async (name: string, _options: unknown, command: Command) => {
    const p = await adminCall<PromotionView>(target(command), 'POST', `${seriesPath(name)}/rollback`);
    out(`${promotionLines(p).join('\n')}\n`);
  });

adminCommand('operator', 'operators of the admin API and dashboard')
  .command('create')
  .description('create an operator token (viewer: read-only; admin: may start/stop studies, issue join tokens, revoke nodes, set release aliases)')
  .requiredOption('--name <name>', 'who the operator is (recorded with every admin action)')
  .option('--role <role>', 'viewer or admin', 'viewer')
  .action(async (options: { name: string; role: string }, command: Command) => {
    const r = await adminCall<{ token: string; name: string; role: string }>(target(command), 'POST', '/api/v1/operators', { name: options.name, role: options.role });
    out(`${r.token}\n`);
    errOut(`operator ${v(r.name)} (${v(r.role)}) created; the token is shown once\n`);
  });

adminCommand('node', 'manage enrolled nodes')
  .command('revoke <nodeId>')
  .description("revoke a node's credential; its agent is disconnected and refused from now on")
  .action(async (id: string, _options: unknown, command: Command) => {
    await adminCall(target(command), 'POST', `/api/v1/nodes/${encodeURIComponent(id)}/revoke`);
    out(`node ${v(id)} revoked\n`);
  });

adminCommand('status', "studies, their current rounds and each site's readiness; the nodes, their last heartbeat and last error").action(async (_options: unknown, command: Command) => {
  type StatusPage = { studies: (StudySummary & { readiness: StudyReadinessView | null })[]; nodes: NodeSummary[]; nodesNext?: string | null; coordinator: { version: string; uptimeSeconds: number } };
  // The status view is paged: read every page of nodes (the studies come with the first).
  const r = await adminCall<StatusPage>(target(command), 'GET', '/api/v1/status?limit=1000');
  for (let next = r.nodesNext ?? null; next !== null; ) {
    const page = await adminCall<StatusPage>(target(command), 'GET', `/api/v1/status?limit=1000&cursor=${encodeURIComponent(next)}`);
    r.nodes.push(...page.nodes);
    next = page.nodesNext ?? null;
  }
  const online = r.nodes.filter((n) => n.online).length;
  out(`${r.coordinator.version}, up ${r.coordinator.uptimeSeconds}s\n\n${table(studyRows(r.studies))}\n\n`);
  for (const s of r.studies) if (s.readiness != null) out(`${readinessLines(`readiness of ${s.id}`, s.readiness)}\n`);
  out(
    `${table([
      ['NODE', 'SITE', 'STATUS', 'BACKEND', 'AGENT', 'LAST HEARTBEAT'],
      ...r.nodes.map((n) => [n.id, n.siteName, n.revoked ? 'revoked' : n.online ? 'online' : 'offline', n.trainingBackend || '-', n.agentVersion || '-', when(n.lastHeartbeatAt ?? n.lastSeenAt)]),
    ])}\n\n${online} of ${r.nodes.length} node(s) online\n`,
  );
  const errors = r.nodes.filter((n) => n.lastError !== null);
  if (errors.length > 0) {
    const describe = (e: NonNullable<NodeSummary['lastError']>): string =>
      `${e.state} in round ${e.round} of ${e.studyId}${e.kind === null ? '' : ` (${PHASE[e.kind] ?? e.kind})`}${e.at === null ? '' : `, ${e.at}`}: ${clip(e.reason, 200)}`;
    out(`\nlast error by site:\n${errors.map((n) => `  ${v(n.siteName)}: ${v(describe(n.lastError!))}`).join('\n')}\n`);
  }
});

registerAuditCommand(program);

program.parseAsync([...process.argv.slice(0, 2), ...prepareArgv(program, process.argv.slice(2))]).catch((err: unknown) => die((err as Error).message));
