#!/usr/bin/env node
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Command } from 'commander';
import { isFedlhsError } from '@fedlhs/core';
import { forTerminal, terminalWriter } from '@fedlhs/service';
import { parseEpsilons } from './dp-accounting.js';
import { dpUtilityMarkdown } from './dp-report.js';
import { runDpUtility } from './dp-utility.js';
import { heartHtml, heartSummary, heartVerdict, hyperParameters, meanSd } from './heart-report.js';
import { HEART_DEFAULT_STRATEGIES, parseHeartStrategies, runHeartBenchmark, type HeartStrategy } from './heart.js';
import { repoRoot } from './local-network.js';
import { lhsMarkdown } from './lhs-report.js';
import { runLhs } from './lhs.js';
import { simulationHtml } from './simulation-report.js';
import { runSimulation } from './simulate.js';
import { signed } from './format.js';

function die(message: string, code = 1): never {
  process.stderr.write(`fedlhs-simulate: ${forTerminal(message, { newlines: true })}\n`);
  process.exit(code);
}

function positiveInt(name: string, value: string, max: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > max) die(`--${name} must be a whole number from 1 to ${max}, got ${JSON.stringify(value)}`, 2);
  return n;
}

// Clinic names, data-derived text and error messages are printed through forTerminal: they cannot move the cursor.
const out = terminalWriter(process.stdout);
const say = (line: string): void => out(`${line}\n`);
const program = new Command('fedlhs-simulate').description('Run fedlhs networks on this machine: synthetic-clinic simulations and real-data benchmarks.');

program
  .command('run')
  .description('generate synthetic clinics, run the federated study over real gRPC, compare with pooled, local-only and oracle models')
  .option('--clinics <n>', 'number of clinics (a mix of large and small)', '5')
  .option('--rounds <n>', 'federated rounds', '10')
  .option('--seed <n>', 'seed for the clinics and the study', '1')
  .option('--scale <x>', 'multiply every clinic\'s size (e.g. 0.2 for a quick run)', '1')
  .option('--out <dir>', 'output directory', join(repoRoot, 'simulation-run'))
  .action(async (o: { clinics: string; rounds: string; seed: string; scale: string; out: string }) => {
    const scale = Number(o.scale);
    if (!(scale > 0 && scale <= 10)) die(`--scale must be a number in (0, 10], got ${JSON.stringify(o.scale)}`, 2);
    const report = await runSimulation({
      clinics: positiveInt('clinics', o.clinics, 50), rounds: positiveInt('rounds', o.rounds, 1000), seed: positiveInt('seed', o.seed, 2 ** 31 - 1), scale, out: resolve(o.out), log: say,
    });
    writeFileSync(join(o.out, 'report.json'), JSON.stringify(report, null, 1));
    writeFileSync(join(o.out, 'report.html'), simulationHtml(report));
    const row = (m: 'local' | 'federated' | 'pooled' | 'oracle') => (report.overall[m] === undefined ? '' : `${m.padEnd(10)} AUC ${report.overall[m]!.auc?.toFixed(3) ?? '-'}  accuracy ${report.overall[m]!.accuracy.toFixed(3)}  Brier ${report.overall[m]!.brier.toFixed(4)}`);
    say(`\nall test patients (federated = the release, round ${report.release.round} of ${report.study.roundsCommitted}, chosen by ${report.release.rule}):\n  ${['local', 'federated', 'pooled', 'oracle'].map((m) => row(m as 'local')).filter((l) => l !== '').join('\n  ')}`);
    say('\nper clinic (smallest first): AUC local → federated, paired gain with its 95 % interval (cases / non-cases in its test part)');
    for (const c of [...report.clinics].sort((a, b) => a.eligible - b.eligible)) {
      const p = c.gainPaired;
      const gain = p === null || p.difference === null ? 'no local model' : `${signed(p.difference)}${p.ci === null ? '' : ` [${signed(p.ci.low)}, ${signed(p.ci.high)}]`}${p.stable ? '' : ', too few cases for a stable AUC'}`;
      const counts = p === null ? '' : ` (${p.cases} / ${p.nonCases})`;
      say(`  ${c.name.padEnd(16)} ${String(c.eligible).padStart(6)} eligible  ${c.results.local?.auc?.toFixed(3) ?? '  -  '} → ${c.results.federated?.auc?.toFixed(3) ?? '  -  '}  ${gain}${counts}`);
    }
    say(`\n${report.headline}`);
    say(`\nreport: ${join(o.out, 'report.html')} (and report.json); ${(report.timings.total! / 1000).toFixed(0)} s in all`);
  });

program
  .command('lhs')
  .description('the learning health system over simulated years: drifting synthetic clinics, a yearly series run by the coordinator\'s schedule on a simulated clock through real agents; frozen vs continuous vs local-only, per clinic and year, with 95 % intervals')
  .option('--years <n>', 'simulated years (a unit switch and a new assay come in year 2, a new clinic in year 3)', '4')
  .option('--scale <x>', "multiply every clinic's size (e.g. 0.2 for a quick run)", '1')
  .option('--rounds <n>', 'federated rounds per yearly run', '10')
  .option('--seed <n>', 'seed for the clinics, the series and the bootstrap', '1')
  .option('--out <dir>', 'output directory', join(repoRoot, 'lhs-run'))
  .action(async (o: { years: string; scale: string; rounds: string; seed: string; out: string }) => {
    const scale = Number(o.scale);
    if (!(scale > 0 && scale <= 10)) die(`--scale must be a number in (0, 10], got ${JSON.stringify(o.scale)}`, 2);
    const out = resolve(o.out);
    let report;
    try {
      report = await runLhs({ years: positiveInt('years', o.years, 20), scale, rounds: positiveInt('rounds', o.rounds, 1000), seed: positiveInt('seed', o.seed, 2 ** 31 - 1), out, log: say });
    } catch (err) {
      if (isFedlhsError(err, 'INVALID_ARGUMENT')) die(err.message, 2);
      throw err;
    }
    writeFileSync(join(out, 'lhs-report.json'), JSON.stringify(report, null, 1));
    writeFileSync(join(out, 'lhs-report.md'), lhsMarkdown(report));
    say('');
    for (const v of report.verdicts) say(`- ${v}`);
    say('\nwhere the equity hypothesis does not hold or is not shown:');
    for (const v of report.notHolding) say(`- ${v}`);
    say('');
    for (const f of report.findings) say(`- ${f}`);
    say(`\nreport: ${join(out, 'lhs-report.md')} (and lhs-report.json); ${(report.timings.total! / 1000).toFixed(0)} s in all`);
  });

program
  .command('heart')
  .description('reproduce the FLamby Fed-Heart-Disease benchmark on the real four-hospital data through the coordinator and agents')
  .option('--data <dir>', 'the heart-disease data directory', join(repoRoot, '..', 'shared', 'data', 'heart-disease'))
  .option('--seeds <n>', 'number of seeds (FLamby reports the mean of 5)', '5')
  .option('--rounds <n>', 'federated rounds (FLamby: 15)', '15')
  .option('--strategies <names>', `comma-separated strategies, each with FLamby's tuned hyper-parameters (default ${HEART_DEFAULT_STRATEGIES.join(',')})`)
  .option('--strategy <name>', 'run one strategy (FLamby\'s tuned hyper-parameters, or core\'s defaults), tunable with --strategy-param')
  .option('--strategy-param <key=value>', 'a parameter of --strategy (e.g. mu=0.1, eta=0.01; clientLearningRate=0.01 sets the clinics\' SGD rate); repeatable', (v: string, acc: string[]) => [...acc, v], [] as string[])
  .option('--strategy-params <json>', 'parameters of --strategy as a JSON object, applied before --strategy-param')
  .option('--out <dir>', 'output directory', join(repoRoot, 'heart-run'))
  .action(async (o: { data: string; seeds: string; rounds: string; strategies?: string; strategy?: string; strategyParam: string[]; strategyParams?: string; out: string }) => {
    const seeds = Array.from({ length: positiveInt('seeds', o.seeds, 20) }, (_, i) => i);
    let strategies: HeartStrategy[];
    try {
      strategies = parseHeartStrategies({ strategy: o.strategy, strategies: o.strategies, params: o.strategyParam, paramsJson: o.strategyParams });
    } catch (err) {
      if (isFedlhsError(err, 'CONFIG_INVALID')) die(err.message, 2);
      throw err;
    }
    const report = await runHeartBenchmark({ dataDir: resolve(o.data), out: resolve(o.out), seeds, rounds: positiveInt('rounds', o.rounds, 1000), strategies, log: say });
    mkdirSync(o.out, { recursive: true });
    writeFileSync(join(o.out, 'report.json'), JSON.stringify(report, null, 1));
    writeFileSync(join(o.out, 'report.html'), heartHtml(report));
    say(`\nmean per-site test accuracy over ${seeds.length} seed(s), ± population sd (fedlhs | FLamby published, seeds 42-46):`);
    for (const s of heartSummary(report)) {
      const ours = `${meanSd(s.mean, s.sd, seeds.length)} [${s.perSeed.map((a) => a.toFixed(3)).join(', ')}]`;
      say(`  ${s.method.padEnd(18)} ${ours.padEnd(seeds.length * 7 + 22)} | ${s.published === undefined ? '-' : meanSd(s.published.mean, s.published.sd, 5)}${s.strategy === undefined ? '' : `   (${hyperParameters(s.strategy)})`}`);
    }
    const v = heartVerdict(report);
    if (v.fedavg !== undefined) say(`\nFedAvg ${v.fedavg.mean.toFixed(3)} is ${v.fedavg.inside ? 'inside' : 'outside'} FLamby's mean ± sd [${v.fedavg.low.toFixed(3)}, ${v.fedavg.high.toFixed(3)}]`);
    if (v.best !== undefined) say(`best strategy: ${v.best.method} ${v.best.mean.toFixed(3)} (FLamby's best: ${v.best.flambyMethod} ${v.best.flambyBest.toFixed(3)})`);
    say(`\n${report.credit}\nreport: ${join(o.out, 'report.html')}`);
  });

program
  .command('dp-utility')
  .description('the utility cost of differential privacy: the default simulation without DP and with DP at each target epsilon, released models scored on the same test patients (AUC with 95 % intervals, paired differences)')
  .option('--epsilons <list>', "each clinic's target epsilon over the study (delta 1e-6), comma-separated", '1,3,8')
  .option('--placement <where>', 'where the noise is added: local (each clinic, in full: the only placement a clinic can rely on without secure aggregation), distributed, or central (the clinics then trust the coordinator\'s noise)', 'local')
  .option('--clip <C>', 'fixed clipping norm (default: the median update norm of the run without DP)')
  .option('--repeats <n>', 'studies per epsilon, each with fresh noise (the spread one draw of the noise leaves)', '1')
  .option('--clinics <n>', 'number of clinics', '5')
  .option('--rounds <n>', 'federated rounds', '10')
  .option('--seed <n>', 'seed for the clinics, the study and the bootstrap', '1')
  .option('--scale <x>', "multiply every clinic's size (e.g. 0.2 for a quick run)", '1')
  .option('--out <dir>', 'output directory', join(repoRoot, 'dp-utility-run'))
  .action(async (o: { epsilons: string; placement: string; clip?: string; repeats: string; clinics: string; rounds: string; seed: string; scale: string; out: string }) => {
    const scale = Number(o.scale);
    if (!(scale > 0 && scale <= 10)) die(`--scale must be a number in (0, 10], got ${JSON.stringify(o.scale)}`, 2);
    if (o.placement !== 'local' && o.placement !== 'distributed' && o.placement !== 'central') die(`--placement must be local, distributed or central, got ${JSON.stringify(o.placement)}`, 2);
    const clip = o.clip === undefined ? undefined : Number(o.clip);
    if (clip !== undefined && !(clip > 0 && clip <= 1e6 && /^[\d.e+-]+$/i.test(o.clip!))) die(`--clip must be a number in (0, 1e6], got ${JSON.stringify(o.clip)}`, 2);
    const out = resolve(o.out);
    let report;
    try {
      report = await runDpUtility({
        epsilons: parseEpsilons(o.epsilons), placement: o.placement, clip, repeats: positiveInt('repeats', o.repeats, 20),
        clinics: positiveInt('clinics', o.clinics, 50), rounds: positiveInt('rounds', o.rounds, 1000), seed: positiveInt('seed', o.seed, 2 ** 31 - 1), scale, out, log: say,
      });
    } catch (err) {
      if (isFedlhsError(err, 'INVALID_ARGUMENT')) die(err.message, 2);
      throw err;
    }
    writeFileSync(join(out, 'dp-utility.json'), JSON.stringify(report, null, 1));
    const md = dpUtilityMarkdown(report);
    writeFileSync(join(out, 'dp-utility.md'), md);
    say(`\n${md}\nreport: ${join(out, 'dp-utility.md')} (and dp-utility.json)`);
  });

program.parseAsync(process.argv).catch((err: unknown) => die((err as Error).stack ?? String(err)));
