/**
 * One 4000-patient clinic (mmol/L units, glucose coded 2339-0), read back from its files with
 * naive parsers: the truth matches the files, both formats hold the same data, and the cohort
 * behaves like the published T2D models (honest features ≈ 0.8 AUC; leaky ones cheat visibly).
 */
import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { rocAuc } from '@fedlhs/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateClinic } from './generate.js';
import { INDEX_WINDOW_END_DAY, INDEX_WINDOW_START_DAY } from './patient.js';
import { defaultClinics, type ClinicProfile } from './profile.js';
import type { ClinicTruth, PatientTruth } from './truth.js';

const profile: ClinicProfile = { ...defaultClinics()[1]!, name: 'clinic-under-test', patients: 4000, seed: 2024 };
const day = (iso: string): number => Math.floor(Date.parse(iso.length === 10 ? `${iso}T00:00:00Z` : iso) / 86_400_000);

async function* lines(path: string): AsyncGenerator<string> {
  const rl = createInterface({ input: createReadStream(path, 'utf8'), crlfDelay: Infinity });
  let first = true;
  for await (const line of rl) {
    if (line !== '' && !(first && path.endsWith('.csv'))) yield line;
    first = false;
  }
}

interface Obs {
  patient: string;
  code: string;
  day: number;
  value: number;
  unit: string;
}

let root: string;
let truth: ClinicTruth;
const birth = new Map<string, number>();
const outpatient = new Map<string, number[]>();
const wellness = new Map<string, number[]>();
const t2dOnsets = new Map<string, number[]>();
const preIndexDx = new Map<string, Set<string>>();
const csvObs: Obs[] = [];
const smokers = new Set<string>();

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'synth-clinic-'));
  truth = await generateClinic(profile, root);
  const index = new Map(truth.patients.map((p) => [p.patientId, p.indexDay]));
  for await (const line of lines(join(root, 'synthea/patients.csv'))) {
    const f = line.split(',');
    birth.set(f[0]!, day(f[1]!));
  }
  for await (const line of lines(join(root, 'synthea/encounters.csv'))) {
    const f = line.split(',');
    if (f[7] === 'wellness' || f[7] === 'ambulatory') outpatient.set(f[3]!, [...(outpatient.get(f[3]!) ?? []), day(f[1]!)]);
    if (f[7] === 'wellness') wellness.set(f[3]!, [...(wellness.get(f[3]!) ?? []), day(f[1]!)]);
  }
  for await (const line of lines(join(root, 'synthea/conditions.csv'))) {
    const f = line.split(',');
    const [start, , patient, , code] = f;
    if (code === '44054006') t2dOnsets.set(patient!, [...(t2dOnsets.get(patient!) ?? []), day(start!)]);
    const idx = index.get(patient!);
    if (idx != null && day(start!) < idx) preIndexDx.set(patient!, (preIndexDx.get(patient!) ?? new Set()).add(code!));
  }
  for await (const line of lines(join(root, 'synthea/observations.csv'))) {
    const f = line.split(',');
    if (f[8] === 'numeric') csvObs.push({ patient: f[1]!, code: f[4]!, day: day(f[0]!), value: Number(f[6]), unit: f[7]! });
    else if (f[6] === 'Smokes tobacco daily (finding)' && day(f[0]!) < (index.get(f[1]!) ?? -Infinity)) smokers.add(f[1]!);
  }
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const eligible = (): PatientTruth[] => truth.patients.filter((p) => p.eligible);

describe('a 4000-patient clinic', () => {
  it('has a realistic oracle AUC and prevalence', () => {
    expect(truth.oracleAuc).toBeGreaterThanOrEqual(0.8);
    expect(truth.oracleAuc).toBeLessThanOrEqual(0.9);
    expect(truth.prevalence).toBeGreaterThanOrEqual(0.05);
    expect(truth.prevalence).toBeLessThanOrEqual(0.2);
    expect(truth.eligible).toBe(eligible().length);
  });

  it('excludes a sane fraction, for reasons the files show', () => {
    const n = truth.patients.length;
    const { 'no-index-visit': noIndex, 'under-18': minors, 'prior-t2d': prior } = truth.exclusions;
    expect(noIndex / n).toBeGreaterThan(0.02);
    expect(noIndex / n).toBeLessThan(0.08);
    expect(minors / n).toBeGreaterThan(0.03);
    expect(minors / n).toBeLessThan(0.1);
    expect(prior / n).toBeGreaterThan(0.03);
    expect(prior / n).toBeLessThan(0.06);
    expect(truth.eligible / n).toBeGreaterThan(0.75);
    const firstInWindow = (visits: number[] | undefined): number | null => {
      const inWindow = (visits ?? []).filter((d) => d >= INDEX_WINDOW_START_DAY && d <= INDEX_WINDOW_END_DAY);
      return inWindow.length === 0 ? null : Math.min(...inWindow);
    };
    let beforeWellness = 0;
    for (const p of truth.patients) {
      // The index is the first outpatient visit (wellness or ambulatory) in the window.
      expect(p.indexDay).toBe(firstInWindow(outpatient.get(p.patientId)));
      const firstWellness = firstInWindow(wellness.get(p.patientId));
      if (p.eligible && p.indexDay !== firstWellness) beforeWellness++;
      if (p.indexDay === null) continue;
      const ageYears = (p.indexDay - birth.get(p.patientId)!) / 365.25;
      const onsets = t2dOnsets.get(p.patientId) ?? [];
      expect(ageYears < 18, p.patientId).toBe(p.exclusion === 'under-18');
      // On or before: a T2D diagnosis visit inside the window is itself the index.
      if (ageYears >= 18) expect(onsets.some((d) => d <= p.indexDay!)).toBe(p.exclusion === 'prior-t2d');
      if (p.eligible) {
        const incident = onsets.some((d) => d > p.indexDay! && d <= p.indexDay! + 1095);
        expect(incident ? 1 : 0).toBe(p.label);
      }
    }
    // An acute ambulatory visit before the first wellness visit in the window is the index of a few.
    expect(beforeWellness / truth.eligible).toBeGreaterThan(0.02);
    expect(beforeWellness / truth.eligible).toBeLessThan(0.2);
  });

  it('writes measurements at the index visit and after it, diabetic after onset', () => {
    const byPatient = new Map(truth.patients.map((p) => [p.patientId, p]));
    let atIndex = 0;
    let after = 0;
    const postOnsetHba1c: number[] = [];
    for (const o of csvObs) {
      const p = byPatient.get(o.patient)!;
      if (!p.eligible || p.indexDay === null) continue;
      if (o.day === p.indexDay) atIndex++;
      if (o.day > p.indexDay) after++;
      const onset = p.label === 1 ? Math.min(...t2dOnsets.get(o.patient)!) : Infinity;
      if (o.code === '4548-4' && o.day >= onset) postOnsetHba1c.push(o.value);
    }
    expect(atIndex).toBeGreaterThan(truth.eligible * 3);
    expect(after).toBeGreaterThan(truth.eligible * 5);
    expect(postOnsetHba1c.length).toBeGreaterThan(truth.eligible * truth.prevalence);
    // 48 mmol/mol = 6.5 %, the diagnostic threshold.
    expect(postOnsetHba1c.filter((v) => v >= 46).length / postOnsetHba1c.length).toBeGreaterThan(0.95);
  });

  it('records labs in the profile units (mmol/L, mmol/mol) and glucose code', () => {
    const glucose = csvObs.filter((o) => o.code === '2339-0');
    expect(glucose.length).toBeGreaterThan(1000);
    expect(csvObs.some((o) => o.code === '2345-7')).toBe(false);
    expect(glucose.filter((o) => o.unit !== 'mmol/L' || o.value < 2.5 || o.value > 20)).toEqual([]);
    expect(glucose.filter((o) => o.value >= 3 && o.value <= 15).length / glucose.length).toBeGreaterThan(0.995);
    expect(csvObs.filter((o) => o.code === '4548-4' && (o.unit !== 'mmol/mol' || o.value < 15 || o.value > 140))).toEqual([]);
    expect(csvObs.filter((o) => o.code === '2093-3' && (o.unit !== 'mmol/L' || o.value < 2 || o.value > 12))).toEqual([]);
  });

  it('holds the same patients and numeric observations in both formats', async () => {
    let fhirPatients = 0;
    for await (const line of lines(join(root, 'fhir/Patient.ndjson'))) {
      const r = JSON.parse(line) as { id: string; birthDate: string };
      expect(birth.get(r.id)).toBe(day(r.birthDate));
      fhirPatients++;
    }
    expect(fhirPatients).toBe(birth.size);
    expect(fhirPatients).toBe(profile.patients);

    type Quantity = { value: number; unit: string; code: string };
    type Resource = {
      subject: { reference: string };
      effectiveDateTime: string;
      code: { coding: { code: string }[] };
      valueQuantity?: Quantity;
      component?: { code: { coding: { code: string }[] }; valueQuantity: Quantity }[];
    };
    const fhirObs: string[] = [];
    for await (const line of lines(join(root, 'fhir/Observation.ndjson'))) {
      const r = JSON.parse(line) as Resource;
      const patient = r.subject.reference.replace('Patient/', '');
      const key = (code: string, q: Quantity): string => `${patient}|${code}|${day(r.effectiveDateTime)}|${q.value}|${q.unit}`;
      if (r.valueQuantity !== undefined) fhirObs.push(key(r.code.coding[0]!.code, r.valueQuantity));
      for (const c of r.component ?? []) fhirObs.push(key(c.code.coding[0]!.code, c.valueQuantity));
    }
    const csvKeys = csvObs.map((o) => `${o.patient}|${o.code}|${o.day}|${o.value}|${o.unit}`);
    expect(fhirObs.length).toBe(csvKeys.length);
    expect(fhirObs.sort()).toEqual(csvKeys.sort());
  });

  it('lets honest pre-index features reach ≈0.8 AUC, and a leaky extractor cheat visibly', () => {
    const cohort = eligible();
    const honest = rows(cohort, (p) => p.indexDay! - 1);
    const leaky = rows(cohort, (p) => p.indexDay! + 1095);
    const labels = cohort.map((p) => p.label!);
    const half = Math.floor(cohort.length / 2);
    const evaluate = (x: number[][]): number => {
      const w = fitLogistic(x.slice(0, half), labels.slice(0, half));
      const scores = x.slice(half).map((r) => r.reduce((s, v, k) => s + v * w[k]!, 0));
      return rocAuc(scores, labels.slice(half))!;
    };
    const honestAuc = evaluate(honest);
    const leakyAuc = evaluate(leaky);
    const oracleAuc = rocAuc(cohort.slice(half).map((p) => p.risk), labels.slice(half))!;
    expect(honestAuc).toBeGreaterThan(0.74);
    expect(honestAuc).toBeLessThan(oracleAuc + 0.02);
    expect(leakyAuc).toBeGreaterThan(honestAuc + 0.05);
  });
});

const FEATURE_CODES = ['39156-5', '8480-6', '2339-0', '4548-4', '2093-3', '2085-9', '2571-8'];

/** Standardised design rows: intercept, age, last value of each lab up to `until(p)` (+ missing flag), diagnoses and smoking before index. */
function rows(cohort: PatientTruth[], until: (p: PatientTruth) => number): number[][] {
  const last = new Map<string, { day: number; value: number }>();
  const limit = new Map(cohort.map((p) => [p.patientId, until(p)]));
  for (const o of csvObs) {
    const lim = limit.get(o.patient);
    if (lim === undefined || o.day > lim) continue;
    const key = `${o.patient}|${o.code}`;
    const prev = last.get(key);
    if (prev === undefined || o.day >= prev.day) last.set(key, { day: o.day, value: o.code === '2571-8' ? Math.log(o.value) : o.value });
  }
  const raw = cohort.map((p) => {
    const dx = preIndexDx.get(p.patientId);
    const values = FEATURE_CODES.map((c) => last.get(`${p.patientId}|${c}`)?.value ?? NaN);
    return [(p.indexDay! - birth.get(p.patientId)!) / 365.25, ...values, dx?.has('15777000') ? 1 : 0, dx?.has('59621000') ? 1 : 0, smokers.has(p.patientId) ? 1 : 0];
  });
  const columns = raw[0]!.length;
  const stats = Array.from({ length: columns }, (_, j) => {
    const v = raw.map((r) => r[j]!).filter((x) => !Number.isNaN(x));
    const mean = v.reduce((s, x) => s + x, 0) / v.length;
    const sd = Math.sqrt(v.reduce((s, x) => s + (x - mean) ** 2, 0) / v.length) || 1;
    return { mean, sd };
  });
  return raw.map((r) => [1, ...r.flatMap((x, j) => (Number.isNaN(x) ? [0, 1] : [(x - stats[j]!.mean) / stats[j]!.sd, 0]))]);
}

/** Ridge-regularised logistic regression by Newton's method (small designs only). */
function fitLogistic(x: number[][], y: number[]): number[] {
  const k = x[0]!.length;
  let w = new Array<number>(k).fill(0);
  for (let iter = 0; iter < 10; iter++) {
    const g = new Array<number>(k).fill(0);
    const h = Array.from({ length: k }, (_, a) => Array.from({ length: k }, (_, b) => (a === b ? 1e-2 : 0)));
    x.forEach((row, i) => {
      const p = 1 / (1 + Math.exp(-row.reduce((s, v, j) => s + v * w[j]!, 0)));
      const e = y[i]! - p;
      const v = p * (1 - p);
      for (let a = 0; a < k; a++) {
        g[a]! += e * row[a]!;
        if (row[a] === 0) continue;
        for (let b = 0; b < k; b++) h[a]![b]! += v * row[a]! * row[b]!;
      }
    });
    for (let a = 1; a < k; a++) g[a]! -= 1e-2 * w[a]!;
    const step = solve(h, g);
    w = w.map((wi, i) => wi + step[i]!);
  }
  return w;
}

/** Gauss-Jordan elimination with partial pivoting. */
function solve(a: number[][], b: number[]): number[] {
  const n = b.length;
  const m = a.map((row, i) => [...row, b[i]!]);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(m[r]![c]!) > Math.abs(m[p]![c]!)) p = r;
    [m[c], m[p]] = [m[p]!, m[c]!];
    for (let r = 0; r < n; r++) {
      if (r === c) continue;
      const f = m[r]![c]! / m[c]![c]!;
      for (let j = c; j <= n; j++) m[r]![j]! -= f * m[c]![j]!;
    }
  }
  return m.map((row, i) => row[n]! / row[i]!);
}
