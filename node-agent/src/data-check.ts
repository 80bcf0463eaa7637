import { studyFeatureNames, type StudyManifest } from '@fedlhs/core';
import { openEhrSource, profileSource, readFlatTable, splitDataset, extractCohort } from '@fedlhs/ehr';
import type { AgentConfig } from './config.js';

const pct = (n: number, of: number): string => (of === 0 ? '-' : `${((100 * n) / of).toFixed(1)}%`);
const lines = (entries: [string, number][], indent = '    '): string => (entries.length === 0 ? `${indent}(none)\n` : entries.map(([k, v]) => `${indent}${k}: ${v}\n`).join(''));

/**
 * The local data-quality report of `fedlhs-agent data check`: aggregate counts only, printed
 * on this machine. Without a manifest it profiles the export; with one it also extracts the
 * study's cohort and reports exclusions, missingness, unit conversions and out-of-range values.
 */
export async function dataQualityReport(c: AgentConfig, manifest: StudyManifest | undefined): Promise<string> {
  let out = `data: ${c.data.format} at ${c.data.path}\n`;
  if (c.data.format === 'flat-table') {
    if (manifest === undefined) return `${out}a flat table is checked against a study's columns: pass --manifest <file> or --study <sha256>\n`;
    const names = studyFeatureNames(manifest);
    const table = await readFlatTable(c.data.path, { features: names, label: manifest.data.label, keyColumn: c.data.keyColumn === '' ? undefined : c.data.keyColumn, splitColumn: manifest.data.splitColumn });
    const split = splitDataset(table, manifest.seed, manifest.data.holdoutFraction);
    const positives = table.y.reduce((s, v) => s + v, 0);
    out += `rows kept: ${table.rows} (train ${split.train.rows}, hold-out ${split.holdout.rows}); label positive ${positives} (${pct(positives, table.rows)})\n`;
    out += `rows rejected, by reason:\n${lines(Object.entries(table.skipped))}`;
    return out + readiness(c, split.train.rows + split.holdout.rows);
  }
  const profile = await profileSource(openEhrSource(c.data.format, c.data.path));
  out += `${JSON.stringify(profile, null, 1)}\n`;
  if (manifest === undefined) return out;
  if (manifest.data.cohort === undefined) return `${out}the study asks for ${manifest.data.featureSpec}, which this ${c.data.format} export cannot produce\n`;
  const { dataset, report } = await extractCohort(openEhrSource(c.data.format, c.data.path), manifest.data.cohort);
  out += `\ncohort for study ${manifest.name}: ${report.patients} patients, ${report.eligible} eligible, ${report.positives} with the outcome (${pct(report.positives, report.eligible)})\n`;
  out += `excluded, by reason:\n${lines(Object.entries(report.excluded))}`;
  out += 'features (missing | out of range | unit mismatch | converted):\n';
  for (const f of report.features) {
    out += `    ${f.name.padEnd(20)} ${pct(f.missing, report.eligible).padStart(6)} | ${f.outOfRange} | ${f.unitMismatch} | ${Object.entries(f.converted).map(([k, v]) => `${k} ${v}`).join(', ') || '-'}\n`;
  }
  out += `records or resources rejected, by reason:\n${lines(Object.entries(report.skipped))}`;
  return out + readiness(c, dataset.rows);
}

function readiness(c: AgentConfig, usable: number): string {
  return usable < c.minCohort ? `\nNOT READY: fewer than ${c.minCohort} usable records (minCohort)\n` : `\nready: ${usable} usable records (minimum ${c.minCohort})\n`;
}
