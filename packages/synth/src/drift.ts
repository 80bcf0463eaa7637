/**
 * Clinics that change over simulated years (issue 13, "The LHS over time, simulated"): the
 * scenario a learning health system has to cope with. Each simulated year every clinic's export
 * is written afresh: that year's patients (a fresh, seeded draw of the clinic's population, its
 * timeline moved so that it ends on the last day of the year) with that year's habits:
 *
 * - prevalence drifts: every clinic's log-odds of incident T2D rises by `prevalenceDriftPerYear`
 *   a year (an ageing, heavier population);
 * - one clinic switches its glucose from mg/dL under LOINC 2345-7 to mmol/L under LOINC 14749-6
 *   in year `unitSwitchYear` (a new laboratory system whose export re-codes all history);
 * - one clinic starts reporting a new assay, fasting insulin (LOINC 20448-7), in year `assayYear`;
 * - a new small clinic joins in year `joinYear`: it has no export before.
 *
 * Pure and deterministic: the same options give the same profiles.
 */
import { FedlhsError } from '@fedlhs/core';
import { HISTORY_END_DAY } from './patient.js';
import { defaultClinics, type ClinicProfile } from './profile.js';
import { mixSeed } from './rng.js';
import { dayOf } from './time.js';

/** The scenario's knobs; {@link DEFAULT_DRIFT} gives the issue's. */
export interface DriftOptions {
  /** Added to every clinic's prevalenceShift (log-odds) per year after the first. */
  prevalenceDriftPerYear: number;
  /** The year the first large clinic switches glucose to mmol/L, LOINC 14749-6. */
  unitSwitchYear: number;
  /** The year the medium clinic starts reporting fasting insulin (LOINC 20448-7). */
  assayYear: number;
  /** The year the new small clinic joins. */
  joinYear: number;
}

/** The scenario: +0.1 log-odds a year (≈ +9 % relative prevalence), switch and assay in year 2, a new clinic in year 3. */
export const DEFAULT_DRIFT: Readonly<DriftOptions> = { prevalenceDriftPerYear: 0.1, unitSwitchYear: 2, assayYear: 2, joinYear: 3 };

/** A clinic of the scenario: its profile before any drift, and which changes it goes through. */
export interface DriftingClinic {
  base: ClinicProfile;
  /** Joins in the scenario's joinYear (the others are there from year 1). */
  joinsLate: boolean;
  /** Switches glucose to mmol/L under LOINC 14749-6 in the scenario's unitSwitchYear. */
  switchesGlucose: boolean;
  /** Starts reporting fasting insulin in the scenario's assayYear. */
  startsInsulin: boolean;
}

/** Name of the clinic that joins late. */
export const JOINING_CLINIC = 'clinic-small-new';

/**
 * The scenario's network: `founders` (2..4, default 4) of defaultClinics(·, seed) — two large, a
 * medium and a small one — plus a small clinic that joins in year `joinYear`. The first large
 * clinic (mg/dL, LOINC 2345-7) is the one that switches glucose units; the medium clinic (or the
 * last founder) starts the new assay.
 */
export function driftingNetwork(seed = 1, founders = 4): DriftingClinic[] {
  if (!Number.isInteger(founders) || founders < 2 || founders > 4) throw new FedlhsError('CONFIG_INVALID', `driftingNetwork: founders must be a whole number in 2..4, got ${founders}`);
  // Five templates: the fifth (a small, young clinic) is the one that joins late.
  const all = defaultClinics(5, seed);
  const picked = [...all.slice(0, founders), all[4]!];
  const assayClinic = Math.min(2, founders - 1);
  return picked.map((base, i) => ({
    base: i === picked.length - 1 ? { ...base, name: JOINING_CLINIC } : base,
    joinsLate: i === picked.length - 1,
    switchesGlucose: i === 0,
    startsInsulin: i === assayClinic,
  }));
}

/**
 * The clinic's profile in simulated `year` (1-based) under `drift`, or undefined before it joins.
 * Each year has its own seed (a fresh draw of the clinic's patients); the prevalence shift
 * grows by the drift per year; the switches apply from their year on.
 */
export function clinicInYear(c: DriftingClinic, year: number, drift: DriftOptions = DEFAULT_DRIFT): ClinicProfile | undefined {
  checkYear(year);
  if (year < joinYear(c, drift)) return undefined;
  const p: ClinicProfile = {
    ...c.base,
    seed: mixSeed(c.base.seed, year),
    prevalenceShift: c.base.prevalenceShift + drift.prevalenceDriftPerYear * (year - 1),
    ethnicityMix: { ...c.base.ethnicityMix },
    raceMix: c.base.raceMix === undefined ? undefined : { ...c.base.raceMix },
    units: { ...c.base.units },
    coding: { ...c.base.coding },
  };
  if (c.switchesGlucose && year >= drift.unitSwitchYear) {
    p.units.glucose = 'mmol/L';
    p.coding.glucoseCode = '14749-6';
  }
  if (c.startsInsulin && year >= drift.assayYear) p.insulinAssay = true;
  return p;
}

/** The year `c` joins under `drift`. */
export function joinYear(c: DriftingClinic, drift: DriftOptions = DEFAULT_DRIFT): number {
  return c.joinsLate ? drift.joinYear : 1;
}

/**
 * The calendar year simulated year 1 is: year y's exports end on (LHS_FIRST_YEAR + y − 1)-12-31
 * and its series run starts on the following 1 January. In the past on purpose: a clinic
 * covers a run by its series approval only when the run's index window ends early enough for
 * every outcome to be known by the clinic's own (real) date.
 */
export const LHS_FIRST_YEAR = 2019;

/**
 * The calendar of simulated `year`: the day offset that moves the generator's timeline (which
 * ends 2022-12-31) to end on the last day of that year, and that day. Pass `dayOffset` to
 * generateClinic.
 */
export function yearCalendar(year: number): { dayOffset: number; lastDay: number } {
  checkYear(year);
  const lastDay = dayOf(LHS_FIRST_YEAR + year - 1, 12, 31);
  return { dayOffset: lastDay - HISTORY_END_DAY, lastDay };
}

/** When simulated `year`'s series run is due (ms): 1 January 00:00 UTC after the year, a yearly cron's time. */
export function yearRunAt(year: number): number {
  checkYear(year);
  return Date.UTC(LHS_FIRST_YEAR + year, 0, 1);
}

function checkYear(year: number): void {
  if (!Number.isInteger(year) || year < 1 || year > 100) throw new FedlhsError('INVALID_ARGUMENT', `a simulated year is a whole number in 1..100, got ${year}`, { details: { field: 'year' } });
}
