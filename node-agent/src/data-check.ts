import { describeIndex, studyFeatureNames, type StudyManifest } from '@fedlhs/core';
import { assessReadiness, extractCohort, openEhrSource, profileSource, readFlatTable, splitDataset, type SourceInventory, type SplitDataset } from '@fedlhs/ehr';
import { forTerminal } from '@fedlhs/service';
import type { AgentConfig } from './config.js';

/** A value from the data or the manifest inside a line (a reason, a file or feature name): it cannot add a line or move the cursor. */
const v = (text: string): string => forTerminal(text);

const pct = (n: number, of: number): string => (of === 0 ? '-' : `${((100 * n) / of).toFixed(1)}%`);
const lines = (entries: [string, number][], indent = '    '): string => (entries.length === 0 ? `${indent}(none)\n` : entries.map(([k, n]) => `${indent}${v(k)}: ${n}\n`).join(''));

/**
 * The local data-quality report of `fedlhs-agent data check`: aggregate counts only, printed
 * on this machine. Without a manifest it profiles the export; with one it also extracts the
 * study's cohort and reports what the export lacks, patients lost while reading, exclusions,
 * missingness, unit conversions, out-of-range values, and the readiness verdict the running
 * agent would send (the same function decides both).
 */
export async function dataQualityReport(c: AgentConfig, manifest: StudyManifest | undefined): Promise<string> {
  let out = `data: ${c.data.format} at ${c.data.path} (encoding ${c.data.encoding})\n`;
  if (c.data.format === 'flat-table') {
    if (manifest === undefined) return `${out}a flat table is checked against a study's columns: pass --manifest <file> or --study <sha256>\n`;
    const names = studyFeatureNames(manifest);
    const table = await readFlatTable(c.data.path, {
      features: names, label: manifest.data.label, keyColumn: c.data.keyColumn === '' ? undefined : c.data.keyColumn, splitColumn: manifest.data.splitColumn, encoding: c.data.encoding,
    });
    const split = splitDataset(table, manifest.seed, manifest.data.holdoutFraction);
    const positives = table.y.reduce((s, v) => s + v, 0);
    out += `rows kept: ${table.rows} (train ${split.train.rows}, hold-out ${split.holdout.rows}); label positive ${positives} (${pct(positives, table.rows)})\n`;
    out += `rows rejected, by reason:\n${lines(Object.entries(table.skipped))}`;
    out += 'features with missing values (kept, imputed with the mean), by feature:\n';
    const gaps = table.gaps ?? { missing: {}, nonNumeric: {} };
    const rows = names.filter((n) => (gaps.missing[n] ?? 0) + (gaps.nonNumeric[n] ?? 0) > 0);
    out += rows.length === 0 ? '    (none)\n' : rows.map((n) => `    ${v(n).padEnd(20)} missing ${gaps.missing[n] ?? 0} (${pct(gaps.missing[n] ?? 0, table.rows)}), not a number ${gaps.nonNumeric[n] ?? 0}\n`).join('');
    return out + readinessLine(c, manifest, split);
  }
  const source = openEhrSource(c.data.format, c.data.path, { encoding: c.data.encoding });
  const inventory = await source.inventory();
  out += inventoryText(inventory);
  const profile = await profileSource(source);
  out += `profile:\n${JSON.stringify(profile, null, 1)}\n`;
  if (manifest === undefined) return out;
  if (manifest.data.cohort === undefined) return `${out}the study asks for ${manifest.data.featureSpec}, which this ${c.data.format} export cannot produce\n`;
  const cohort = manifest.data.cohort;
  const { dataset, report } = await extractCohort(openEhrSource(c.data.format, c.data.path, { encoding: c.data.encoding }), cohort);
  out += `\ncohort for study ${v(manifest.name)}: ${report.patients} patients read, ${report.eligible} eligible, ${report.positives} with the outcome (${pct(report.positives, report.eligible)})\n`;
  out += `index event: ${describeIndex(cohort.index)}\n`;
  out += `encounters in the index window, by class:\n${lines(Object.entries(report.indexWindowClasses))}`;
  out += `patients dropped while reading, by reason:\n${lines(Object.entries(report.patientLosses))}`;
  out += `events of patients not in the patient file: ${report.eventsForUnknownPatients}\n`;
  out += `excluded, by reason:\n${lines(Object.entries(report.excluded))}`;
  out += 'features (missing | out of range | unit mismatch | converted):\n';
  for (const f of report.features) {
    out += `    ${v(f.name).padEnd(20)} ${pct(f.missing, report.eligible).padStart(6)} | ${f.outOfRange} | ${f.unitMismatch} | ${Object.entries(f.converted).map(([k, n]) => `${v(k)} ${n}`).join(', ') || '-'}\n`;
  }
  out += `records or resources rejected, by reason:\n${lines(Object.entries(report.skipped))}`;
  out += `records kept with something not read, by reason:\n${lines(Object.entries(report.notes))}`;
  out += report.warnings.map((w) => `WARNING: ${v(w)}\n`).join('');
  return out + readinessLine(c, manifest, splitDataset(dataset, manifest.seed, manifest.data.holdoutFraction));
}

/** Which files hold which kind of event, what the export lacks, and what is not read. */
function inventoryText(inventory: SourceInventory): string {
  let out = 'export contents, by kind of event:\n';
  for (const [kind, files] of Object.entries(inventory.files)) {
    out += `    ${kind.padEnd(12)} ${files.length === 0 ? `(none: no ${inventory.expected[kind as keyof SourceInventory['expected']]})` : v(files.join(', '))}\n`;
  }
  if (inventory.unread.length > 0) out += `    not read: ${v(inventory.unread.join(', '))}\n`;
  return out;
}

/** The readiness verdict, from the same function the running agent uses. */
function readinessLine(c: AgentConfig, manifest: StudyManifest, split: SplitDataset): string {
  const verdict = assessReadiness(split, { minCohort: c.minCohort, minCellCount: manifest.data.minCellCount });
  return verdict.ready
    ? `\nREADY: ${split.train.rows + split.holdout.rows} usable records (train ${split.train.rows}, hold-out ${split.holdout.rows}; minimum cohort ${c.minCohort}, minimum cell count ${manifest.data.minCellCount})\n`
    : `\nNOT READY: ${v(verdict.detail)}\n`;
}
