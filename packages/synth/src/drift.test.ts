import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_DRIFT, JOINING_CLINIC, clinicInYear, driftingNetwork, joinYear, yearCalendar, yearRunAt } from './drift.js';
import { generateClinic } from './generate.js';
import { HISTORY_END_DAY } from './patient.js';
import { dayOf } from './time.js';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'synth-drift-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const network = driftingNetwork(5);
const byName = (name: string) => network.find((c) => c.base.name === name)!;
const observations = async (dir: string): Promise<string[]> => (await readFile(join(root, dir, 'synthea', 'observations.csv'), 'utf8')).trim().split('\n').slice(1);
const mean = (xs: number[]): number => xs.reduce((s, x) => s + x, 0) / xs.length;

describe('drifting clinics', () => {
  it('is deterministic and gives each year its own draw', () => {
    expect(driftingNetwork(5)).toEqual(network);
    const c = network[0]!;
    expect(clinicInYear(c, 2)).toEqual(clinicInYear(c, 2));
    expect(clinicInYear(c, 2)!.seed).not.toBe(clinicInYear(c, 1)!.seed);
    expect(network.map((x) => x.base.name)).toEqual(['clinic-large-1', 'clinic-large-2', 'clinic-medium', 'clinic-small-1', JOINING_CLINIC]);
  });

  it('raises prevalence year by year: in the profile and in the true risk of the eligible patients', async () => {
    const c = { ...network[1]!, base: { ...network[1]!.base, patients: 1500 } };
    const shifts = [1, 2, 3, 4].map((y) => clinicInYear(c, y)!.prevalenceShift);
    expect(shifts[1]! - shifts[0]!).toBeCloseTo(DEFAULT_DRIFT.prevalenceDriftPerYear, 12);
    expect(shifts[3]! - shifts[0]!).toBeCloseTo(3 * DEFAULT_DRIFT.prevalenceDriftPerYear, 12);
    const risk = async (y: number): Promise<number> => {
      const truth = await generateClinic(clinicInYear(c, y)!, join(root, `risk-${y}`), ['synthea-csv']);
      return mean(truth.patients.filter((p) => p.eligible).map((p) => p.risk));
    };
    const [r1, r5] = [await risk(1), await risk(5)];
    // +0.4 log-odds at a mean risk near 0.09 is about +3 points; a fresh draw without drift moved it by under 1 here.
    expect(r5 - r1).toBeGreaterThan(0.015);
  });

  it('switches one clinic\'s glucose to mmol/L under LOINC 14749-6 from the switch year, visible in its export', async () => {
    const c = byName('clinic-large-1');
    expect(clinicInYear(c, 1)!.coding.glucoseCode).toBe('2345-7');
    const y1 = { ...clinicInYear(c, 1)!, patients: 200 };
    const y2 = { ...clinicInYear(c, DEFAULT_DRIFT.unitSwitchYear)!, patients: 200 };
    await generateClinic(y1, join(root, 'switch-1'), ['synthea-csv']);
    await generateClinic(y2, join(root, 'switch-2'), ['synthea-csv']);
    const glucose = (lines: string[], code: string): string[] => lines.filter((l) => l.includes(`,${code},`));
    const before = await observations('switch-1');
    const after = await observations('switch-2');
    expect(glucose(before, '2345-7').length).toBeGreaterThan(20);
    expect(glucose(before, '2345-7').every((l) => l.includes(',mg/dL,'))).toBe(true);
    expect(glucose(before, '14749-6')).toEqual([]);
    expect(glucose(after, '2345-7')).toEqual([]);
    expect(glucose(after, '14749-6').length).toBeGreaterThan(20);
    expect(glucose(after, '14749-6').every((l) => l.includes(',mmol/L,'))).toBe(true);
    // The other clinics keep their coding.
    expect(clinicInYear(byName('clinic-small-1'), 3)!.coding.glucoseCode).toBe('2345-7');
  });

  it('adds the new assay from its year without changing any other value', async () => {
    const c = byName('clinic-medium');
    expect(clinicInYear(c, 1)!.insulinAssay).toBeUndefined();
    const withAssay = { ...clinicInYear(c, DEFAULT_DRIFT.assayYear)!, patients: 200 };
    expect(withAssay.insulinAssay).toBe(true);
    await generateClinic(withAssay, join(root, 'assay-on'), ['synthea-csv']);
    await generateClinic({ ...withAssay, insulinAssay: false }, join(root, 'assay-off'), ['synthea-csv']);
    const on = await observations('assay-on');
    const off = await observations('assay-off');
    const insulin = on.filter((l) => l.includes(',20448-7,'));
    expect(insulin.length).toBeGreaterThan(20);
    expect(insulin.every((l) => l.includes(',u[IU]/mL,'))).toBe(true);
    expect(off.some((l) => l.includes(',20448-7,'))).toBe(false);
    expect(on.filter((l) => !l.includes(',20448-7,'))).toEqual(off);
  });

  it('has the new small clinic only from its join year', () => {
    const c = byName(JOINING_CLINIC);
    expect(joinYear(c)).toBe(3);
    expect(clinicInYear(c, 1)).toBeUndefined();
    expect(clinicInYear(c, 2)).toBeUndefined();
    expect(clinicInYear(c, 3)!.name).toBe(JOINING_CLINIC);
    expect(clinicInYear(c, 3)!.patients).toBeLessThan(300);
    for (const f of network.filter((x) => x !== c)) expect(clinicInYear(f, 1)).toBeDefined();
    expect(clinicInYear(c, 2, { ...DEFAULT_DRIFT, joinYear: 2 })).toBeDefined();
  });

  it('moves every date by the year\'s offset, so year y ends on its last day', async () => {
    expect(yearCalendar(4).dayOffset).toBe(0);
    expect(yearCalendar(3).lastDay).toBe(dayOf(2021, 12, 31));
    expect(yearRunAt(3)).toBe(Date.UTC(2022, 0, 1));
    const p = { ...clinicInYear(network[3]!, 1)!, patients: 80 };
    const a = await generateClinic(p, join(root, 'shift-0'), ['synthea-csv']);
    const { dayOffset } = yearCalendar(3);
    const b = await generateClinic(p, join(root, 'shift-3'), ['synthea-csv'], { dayOffset });
    expect(b.patients.map((x) => x.patientId)).toEqual(a.patients.map((x) => x.patientId));
    expect(b.patients.map((x) => x.indexDay)).toEqual(a.patients.map((x) => (x.indexDay === null ? null : x.indexDay + dayOffset)));
    const lastDate = (lines: string[]): string => lines.map((l) => l.slice(0, 10)).sort().at(-1)!;
    expect(lastDate(await observations('shift-3')) <= '2021-12-31').toBe(true);
    expect(HISTORY_END_DAY + dayOffset).toBe(dayOf(2021, 12, 31));
    await expect(generateClinic(p, join(root, 'bad'), ['synthea-csv'], { dayOffset: 0.5 })).rejects.toThrow(/dayOffset/);
    expect(() => clinicInYear(network[0]!, 0)).toThrow(/1\.\.100/);
  });
});
