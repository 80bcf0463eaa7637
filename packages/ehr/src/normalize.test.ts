import { describe, expect, it } from 'vitest';
import { isoToDay } from './events.js';
import { isSnomedLike, normalizeCodeSystem, parseDay, parseNumber, parseSex, smokingStatusCode } from './normalize.js';

describe('parseDay', () => {
  it('reads dates, compact dates, partial dates and date-times the way exports write them', () => {
    const d = isoToDay('2019-03-04');
    expect(parseDay('2019-03-04')).toBe(d);
    expect(parseDay(' 20190304 ')).toBe(d);
    expect(parseDay('2019-03-04T23:59:59Z')).toBe(d);
    expect(parseDay('2019-03-04 23:59:59')).toBe(d);
    expect(parseDay('2019-03-04T23:59:59.123')).toBe(d);
    expect(parseDay('2019-03-04T20:00:00-05:00')).toBe(isoToDay('2019-03-05'));
    expect(parseDay('2019-03')).toBe(isoToDay('2019-03-01'));
    expect(parseDay('2019')).toBe(isoToDay('2019-01-01'));
    expect(parseDay('2020-02-29')).toBe(isoToDay('2020-02-29'));
  });

  it('rejects impossible and foreign formats instead of guessing', () => {
    for (const text of [undefined, '', '2019-02-30', '2019-13-01', '201903', '03/04/2019', 'March 4, 2019', '2019-03-04T25:00', '2019-03-04Tnoon']) {
      expect(parseDay(text)).toBeUndefined();
    }
  });
});

describe('value and code helpers', () => {
  it('parses only plain decimal numbers', () => {
    expect(['95', '-1.5', '.5', '6.1e3', '7.'].map(parseNumber)).toEqual([95, -1.5, 0.5, 6100, 7]);
    expect(['', 'abc', '0x10', 'Infinity', '1,5', '1 000', undefined].map(parseNumber)).toEqual(Array(7).fill(undefined));
  });

  it('normalises code-system spellings and recognises SNOMED-shaped codes', () => {
    expect(['http://snomed.info/sct', 'SNOMED-CT', 'http://loinc.org/', 'RxNorm', 'ICD-10-CM', 'ICD-10', 'urn:oid:1.2'].map(normalizeCodeSystem)).toEqual([
      'SNOMED',
      'SNOMED',
      'LOINC',
      'RXNORM',
      'ICD10CM',
      undefined,
      undefined,
    ]);
    expect(['266919005', '428041000124106', '12345', '0123456', '2339-0'].map(isSnomedLike)).toEqual([true, true, false, false, false]);
  });

  it('maps smoking-status texts in a fixed order and sex spellings', () => {
    expect(
      ['Never smoked tobacco (finding)', 'Former smoker', 'Ex-smoker (finding)', 'Current every day smoker', 'Current some day smoker', 'Smoker, current status unknown'].map(smokingStatusCode),
    ).toEqual(['266919005', '8517006', '8517006', '449868002', '428041000124106', undefined]);
    expect(['M', 'female', 'O', 'U', '', undefined].map(parseSex)).toEqual(['male', 'female', 'other', 'unknown', 'unknown', 'unknown']);
  });
});
