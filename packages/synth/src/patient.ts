/**
 * One patient's timeline: demographics, latent state, wellness schedule, acute visits, index
 * visit (the first outpatient visit, wellness or ambulatory, in the index window), diagnoses,
 * T2D onset and every measurement, in a format-neutral form the writers share.
 */
import {
  AMBULATORY_REASONS,
  CONDITIONS,
  EMERGENCY_REASONS,
  recordQuantity,
  roundTo,
  type Analyte,
  type Coded,
  type RecordedQuantity,
} from './codes.js';
import { PREVALENT_T2D_OFFSET, logistic, riskLogit, sampleState, type SmokingStatus } from './physiology.js';
import { DEFAULT_RACE_MIX, type ClinicProfile } from './profile.js';
import type { Rng } from './rng.js';
import { MS_PER_DAY, dayOf, isoDateTime } from './time.js';
import type { Exclusion, PatientTruth } from './truth.js';

/** First day of wellness history. */
export const HISTORY_START_DAY = dayOf(2008, 1, 1);
/** The index window: the index is the first outpatient (wellness or ambulatory) visit in [INDEX_WINDOW_START_DAY, INDEX_WINDOW_END_DAY]. */
export const INDEX_WINDOW_START_DAY = dayOf(2015, 1, 1);
/** Last day of the index window (2018-12-31). */
export const INDEX_WINDOW_END_DAY = dayOf(2018, 12, 31);
/** Last day of follow-up (2022-12-31). */
export const HISTORY_END_DAY = dayOf(2022, 12, 31);
/** Prediction horizon and lab window, in days. */
export const HORIZON_DAYS = 1095;

const ADULT_DAYS = 18 * 365.25;

/** Encounter class as Synthea writes it. */
export type EncounterClass = 'wellness' | 'ambulatory' | 'emergency';

/** An encounter. Times are ms since epoch (UTC), with their ISO text. */
export interface SimEncounter {
  id: string;
  day: number;
  startMs: number;
  /** "YYYY-MM-DDThh:mm:00Z" of startMs. */
  start: string;
  /** End, ms since epoch (UTC). */
  stopMs: number;
  /** "YYYY-MM-DDThh:mm:00Z" of stopMs. */
  stop: string;
  cls: EncounterClass;
  reason?: Coded | undefined;
}

/** A diagnosed condition. */
export interface SimCondition {
  id: string;
  day: number;
  stopDay?: number | undefined;
  encounter: SimEncounter;
  coded: Coded;
}

/** A measurement at an encounter, dated at the encounter start. */
export type SimObservation =
  | { kind: 'quantity'; id: string; encounter: SimEncounter; quantity: RecordedQuantity }
  | { kind: 'bp'; id: string; encounter: SimEncounter; sbp: number; dbp: number }
  | { kind: 'smoking'; id: string; encounter: SimEncounter; status: SmokingStatus };

/** A patient with everything both writers need (identifiers are fake but must stay in the clinic). */
export interface SimPatient {
  id: string;
  birthDay: number;
  female: boolean;
  race: string;
  ethnicity: string;
  first: string;
  last: string;
  married: boolean;
  ssn: string;
  drivers: string;
  passport: string;
  address: string;
  zip: string;
  expenses: number;
  coverage: number;
  encounters: SimEncounter[];
  conditions: SimCondition[];
  observations: SimObservation[];
  truth: PatientTruth;
}

/** What simulatePatient needs from the clinic. */
export interface PatientContext {
  rng: Rng;
  newId: () => string;
  profile: ClinicProfile;
  /**
   * The stream of the optional assays (profile insulinAssay): their values and ids come from
   * here, never from `rng`, so switching an assay on leaves every other value unchanged.
   */
  assay?: { rng: Rng; newId: () => string } | undefined;
}

const FEMALE_NAMES = ['Ana', 'Maria', 'Linda', 'Grace', 'Mei', 'Fatima', 'Sofia', 'Olga', 'Aisha', 'Joan', 'Keiko', 'Rosa', 'Ingrid', 'Priya'];
const MALE_NAMES = ['John', 'Luis', 'Wei', 'Omar', 'Carlos', 'David', 'Ivan', 'Kwame', 'Raj', 'Peter', 'Hiro', 'Mateo', 'Lars', 'Tomas'];
const LAST_NAMES = ['Smith', 'Garcia', 'Nguyen', 'Okafor', 'Kowalski', 'Haddad', 'Silva', 'Chen', 'Murphy', 'Jensen', 'Rossi', 'Patel', 'Kim', 'Lopez', 'Brown', 'Schmidt'];
const STREETS = ['Maple', 'Oak', 'Harbor', 'Mill', 'Church', 'Elm', 'Lake', 'Hill'];

const clamp = (x: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, x));

/**
 * Adult age at index: the profile's normal truncated to 18.05..89.95, kept off the 18th and the
 * 90th birthdays so that no age convention (days/365.25, calendar years, the day rounding of the
 * birth date) moves a patient across the headline study's 18..90 eligibility bounds.
 */
function adultAge(rng: Rng, profile: ClinicProfile): number {
  for (let attempt = 0; attempt < 20; attempt++) {
    const age = rng.normal(profile.ageMean, profile.ageSd);
    if (age >= 18.05 && age <= 89.95) return age;
  }
  return clamp(profile.ageMean, 18.05, 89.95);
}

/** An acute visit drawn ahead of the index: its day, class, reason and how many days the reason lasts. */
interface AcuteVisit {
  cls: 'ambulatory' | 'emergency';
  day: number;
  reason: Coded;
  days: number;
}

/** The earliest day in the index window, or null. */
function firstInWindow(days: readonly number[]): number | null {
  let first: number | null = null;
  for (const d of days) if (d >= INDEX_WINDOW_START_DAY && d <= INDEX_WINDOW_END_DAY && (first === null || d < first)) first = d;
  return first;
}

/** Fraction of patients under 18 at index. */
export const MINOR_FRACTION = 0.06;

/** Simulates one patient. Draw order is part of the seeded output: keep it stable. */
export function simulatePatient(ctx: PatientContext): SimPatient {
  const { rng, newId, profile } = ctx;
  const id = newId();
  const female = rng.bernoulli(profile.femaleFraction);
  const ethnicity = rng.pick(profile.ethnicityMix);
  const race = rng.pick(profile.raceMix ?? DEFAULT_RACE_MIX);

  // Attendance: most patients come regularly since 2008; some join later, some leave before
  // the index window or only arrive after it (those have no index visit).
  const u = rng.next();
  const pattern = u < 0.02 ? 'left' : u < 0.045 ? 'late' : u < 0.145 ? 'joiner' : 'regular';
  let firstVisit: number;
  let lastDay = HISTORY_END_DAY;
  if (pattern === 'regular') firstVisit = HISTORY_START_DAY + rng.int(0, 540);
  else if (pattern === 'joiner') firstVisit = rng.int(HISTORY_START_DAY + 365, INDEX_WINDOW_END_DAY - 120);
  else if (pattern === 'late') firstVisit = rng.int(INDEX_WINDOW_END_DAY + 1, HISTORY_END_DAY - 365);
  else {
    firstVisit = HISTORY_START_DAY + rng.int(0, 365);
    lastDay = rng.int(HISTORY_START_DAY + 730, INDEX_WINDOW_START_DAY - 1);
  }
  const scheduled: number[] = [];
  for (let d = firstVisit; d <= lastDay; d += rng.int(300, 730)) scheduled.push(d);

  // Acute visits are drawn before the index is fixed: the index is the first OUTPATIENT visit
  // (wellness or ambulatory) in the window, and an acute ambulatory visit may come first.
  const attendedYears = Math.max(0, lastDay - firstVisit) / 365.25;
  const drawAcute = (cls: 'ambulatory' | 'emergency', count: number, reasons: readonly Coded[]): AcuteVisit[] =>
    Array.from({ length: count }, () => ({ cls, day: rng.int(firstVisit, lastDay), reason: rng.choice(reasons), days: rng.int(7, 28) }));
  const acuteDrawn = [
    ...drawAcute('ambulatory', rng.poisson(0.12 * attendedYears), AMBULATORY_REASONS),
    ...drawAcute('emergency', rng.poisson(0.025 * attendedYears), EMERGENCY_REASONS),
  ];
  const plannedIndex = firstInWindow([...scheduled, ...acuteDrawn.filter((v) => v.cls === 'ambulatory').map((v) => v.day)]);

  // Age is drawn at the index (so it stays off the 18th birthday); patients without one get a
  // nominal anchor day in the window. Visits before birth are dropped; the index never is.
  const anchor = plannedIndex ?? rng.int(INDEX_WINDOW_START_DAY, INDEX_WINDOW_END_DAY);
  const minor = rng.bernoulli(MINOR_FRACTION);
  const ageYears = minor ? rng.uniform(1, 17.9) : adultAge(rng, profile);
  const birthDay = anchor - Math.round(ageYears * 365.25);
  const wellnessDays = scheduled.filter((d) => d > birthDay);
  const acuteVisits = acuteDrawn.filter((v) => v.day > birthDay);
  const firstSeen = Math.max(wellnessDays[0] ?? firstVisit, birthDay + 1);

  const demographics = { ageYears, female, ethnicity, race };
  const state = sampleState(rng, demographics);
  const logit = riskLogit(state, demographics) + profile.prevalenceShift;
  const risk = logistic(logit);

  // T2D already diagnosed before index: same causes, older patients more likely.
  let priorOnset: number | null = null;
  const pPrior = minor ? 0 : logistic(logit + PREVALENT_T2D_OFFSET) * Math.min(1, (ageYears - 18) / 20);
  if (rng.bernoulli(pPrior)) {
    const lo = Math.max(firstSeen, birthDay + Math.ceil(ADULT_DAYS) + 1, anchor - 8 * 365);
    const hi = Math.min(anchor - 30, lastDay);
    if (lo <= hi) priorOnset = rng.int(lo, hi);
  }

  // The true index: the first outpatient visit in the window, as an extractor sees it. The
  // ambulatory visit that diagnoses prior T2D counts too: when it falls inside the window it
  // is the index itself (the patient is excluded for prior T2D either way, and is an adult
  // there, more than 18 years and a day after birth).
  const indexDay = firstInWindow([...wellnessDays, ...acuteVisits.filter((v) => v.cls === 'ambulatory').map((v) => v.day), ...(priorOnset === null ? [] : [priorOnset])]);

  let exclusion: Exclusion | undefined;
  if (indexDay === null) exclusion = 'no-index-visit';
  else if (indexDay - birthDay < ADULT_DAYS) exclusion = 'under-18';
  else if (priorOnset !== null) exclusion = 'prior-t2d';
  const eligible = exclusion === undefined;

  // The label horizon runs from the true index (for eligible patients, the anchor itself).
  let label: 0 | 1 | null = null;
  let onset = priorOnset;
  if (eligible && indexDay !== null) {
    label = rng.bernoulli(risk) ? 1 : 0;
    if (label === 1) onset = indexDay + rng.int(1, HORIZON_DAYS);
    else if (rng.bernoulli(0.6 * risk)) {
      // Diagnosed after the horizon: a negative label, so the extractor must respect it.
      const late = indexDay + rng.int(HORIZON_DAYS + 1, 2 * HORIZON_DAYS);
      if (late <= HISTORY_END_DAY) onset = late;
    }
  }
  // After onset, glycaemia is clearly diabetic (treated or not).
  const excess = rng.uniform(0.5, 2.5);
  const trueGlucose = (day: number): number => (onset !== null && day >= onset ? Math.max(state.fastingGlucose, 126) + 22 * excess : state.fastingGlucose);
  const trueHba1c = (day: number): number => (onset !== null && day >= onset ? Math.max(state.hba1c, 6.5) + excess : state.hba1c);

  const encounters: SimEncounter[] = [];
  const conditions: SimCondition[] = [];
  const observations: SimObservation[] = [];
  const encounter = (day: number, cls: EncounterClass, reason?: Coded): SimEncounter => {
    const startMs = day * MS_PER_DAY + rng.int(8 * 60, 16 * 60 + 45) * 60_000;
    const minutes = cls === 'emergency' ? rng.int(60, 240) : cls === 'wellness' ? rng.int(15, 45) : rng.int(15, 30);
    const stopMs = startMs + minutes * 60_000;
    const e: SimEncounter = { id: newId(), day, startMs, start: isoDateTime(startMs), stopMs, stop: isoDateTime(stopMs), cls, reason };
    encounters.push(e);
    return e;
  };
  const diagnose = (e: SimEncounter, coded: Coded, stopDay?: number): void => {
    conditions.push({ id: newId(), day: e.day, stopDay, encounter: e, coded });
  };
  const quantity = (e: SimEncounter, analyte: Analyte, canonical: number): RecordedQuantity => {
    const q = recordQuantity(analyte, canonical, profile);
    observations.push({ kind: 'quantity', id: newId(), encounter: e, quantity: q });
    return q;
  };
  const bloodPressure = (e: SimEncounter): { sbp: number; dbp: number } => {
    const sbp = roundTo(clamp(state.sbp + rng.normal(0, 9), 70, 250), 0);
    const dbp = roundTo(clamp(state.dbp + rng.normal(0, 6), 40, sbp - 10), 0);
    observations.push({ kind: 'bp', id: newId(), encounter: e, sbp, dbp });
    return { sbp, dbp };
  };

  const rate = profile.labOrderRate;
  let hasPrediabetes = false;
  let hasHypertension = false;
  let hasHyperlipidemia = false;
  for (const day of wellnessDays) {
    const e = encounter(day, 'wellness');
    const inWindow = Math.abs(day - anchor) <= HORIZON_DAYS;
    const adultAtVisit = day - birthDay >= ADULT_DAYS;
    const pVitals = inWindow ? Math.max(rate, 0.9) : 0.5;
    if (rng.bernoulli(pVitals)) quantity(e, 'bmi', clamp(state.bmi + rng.normal(0, 0.6), 10, 80));
    const bp = rng.bernoulli(pVitals) ? bloodPressure(e) : undefined;
    if (adultAtVisit && bp !== undefined && !hasHypertension && (bp.sbp >= 140 || bp.dbp >= 90) && rng.bernoulli(0.45)) {
      hasHypertension = true;
      diagnose(e, CONDITIONS.hypertension);
    }
    if (!inWindow || !adultAtVisit) continue;
    const glucose = rng.bernoulli(rate) ? clamp(trueGlucose(day) + rng.normal(0, 7), 50, 500) : undefined;
    if (glucose !== undefined) quantity(e, 'glucose', glucose);
    if (glucose !== undefined && profile.insulinAssay === true && ctx.assay !== undefined) {
      // Fasting insulin rises with insulin resistance (log-normal around 9 µIU/mL).
      const insulin = clamp(Math.exp(Math.log(9) + 0.5 * state.insulinResistance + ctx.assay.rng.normal(0, 0.25)), 1, 300);
      observations.push({ kind: 'quantity', id: ctx.assay.newId(), encounter: e, quantity: recordQuantity('insulin', insulin, profile) });
    }
    const hba1c = rng.bernoulli(rate) ? clamp(trueHba1c(day) + rng.normal(0, 0.12), 3.5, 15) : undefined;
    if (hba1c !== undefined) quantity(e, 'hba1c', hba1c);
    if (rng.bernoulli(rate)) {
      const tc = clamp(state.totalCholesterol + rng.normal(0, 15), 80, 450);
      const tg = clamp(state.triglycerides * Math.exp(rng.normal(0, 0.2)), 25, 1500);
      quantity(e, 'cholesterol', tc);
      quantity(e, 'hdl', clamp(state.hdl + rng.normal(0, 5), 15, 120));
      quantity(e, 'triglycerides', tg);
      if (!hasHyperlipidemia && (tc >= 240 || tg >= 200) && rng.bernoulli(0.4)) {
        hasHyperlipidemia = true;
        diagnose(e, CONDITIONS.hyperlipidemia);
      }
    }
    if (rng.bernoulli(Math.max(rate, 0.7))) observations.push({ kind: 'smoking', id: newId(), encounter: e, status: state.smoking });
    const beforeOnset = onset === null || day < onset;
    const prediabeticLab = (glucose !== undefined && glucose >= 100 && glucose < 126) || (hba1c !== undefined && hba1c >= 5.7 && hba1c < 6.5);
    if (beforeOnset && !hasPrediabetes && prediabeticLab && rng.bernoulli(0.3)) {
      hasPrediabetes = true;
      diagnose(e, CONDITIONS.prediabetes);
    }
  }

  if (onset !== null) {
    const e = encounter(onset, 'ambulatory', CONDITIONS.t2d);
    quantity(e, 'glucose', clamp(trueGlucose(onset) + rng.normal(0, 7), 50, 500));
    quantity(e, 'hba1c', clamp(trueHba1c(onset) + rng.normal(0, 0.12), 3.5, 15));
    diagnose(e, CONDITIONS.t2d);
  }

  for (const v of acuteVisits) {
    const e = encounter(v.day, v.cls, v.reason);
    diagnose(e, v.reason, e.day + v.days);
    if (v.cls === 'ambulatory' && Math.abs(e.day - anchor) <= HORIZON_DAYS && rng.bernoulli(0.3)) bloodPressure(e);
  }

  encounters.sort((a, b) => a.startMs - b.startMs);
  conditions.sort((a, b) => a.day - b.day || a.encounter.startMs - b.encounter.startMs);
  observations.sort((a, b) => a.encounter.startMs - b.encounter.startMs);

  const gender = female ? FEMALE_NAMES : MALE_NAMES;
  return {
    id,
    birthDay,
    female,
    race,
    ethnicity,
    first: `${rng.choice(gender)}${rng.int(10, 999)}`,
    last: `${rng.choice(LAST_NAMES)}${rng.int(10, 999)}`,
    married: ageYears >= 22 && rng.bernoulli(0.55),
    ssn: `999-${rng.int(10, 99)}-${rng.int(1000, 9999)}`,
    drivers: `S99${rng.int(1_000_000, 9_999_999)}`,
    passport: `X${rng.int(10_000_000, 99_999_999)}X`,
    address: `${rng.int(1, 999)} ${rng.choice(STREETS)} Street`,
    zip: `0${rng.int(1000, 2799)}`,
    expenses: roundTo(rng.uniform(1000, 900_000), 2),
    coverage: roundTo(rng.uniform(0, 50_000), 2),
    encounters,
    conditions,
    observations,
    truth: { patientId: id, eligible, indexDay, risk, label, exclusion },
  };
}
