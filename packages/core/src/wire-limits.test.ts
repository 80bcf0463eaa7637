import { describe, expect, it } from 'vitest';
import { FedlhsError } from './errors.js';
import { WIRE_STRINGS, checkWireCount, checkWireEnum, checkWireNumber, checkWireString, quoteExcerpt, sanitizeWireText, stringViolation } from './wire-limits.js';

function thrown(fn: () => void): FedlhsError {
  try {
    fn();
  } catch (err) {
    if (err instanceof FedlhsError) return err;
    throw err;
  }
  throw new Error('did not throw');
}

describe('wire limits', () => {
  it('admits every id the coordinator mints', () => {
    for (const id of ['node_3f9a0c12b7e4d5a6', 'task_0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9', `${'a'.repeat(63)}-0a1b2c`, 'heart-failure.v2_x-9f8e7d', '']) {
      expect(stringViolation(id, WIRE_STRINGS['StudyReadiness.study_id'])).toBeUndefined();
    }
  });

  it('refuses a 3 MiB id naming the field and the limit, quoting only an excerpt', () => {
    const err = thrown(() => checkWireString('TaskUpdate.task_id', 'x'.repeat(3 * 1024 * 1024)));
    expect(err.code).toBe('INVALID_ARGUMENT');
    expect(err.details).toEqual({ field: 'TaskUpdate.task_id' });
    expect(err.message).toMatchInlineSnapshot(`"field TaskUpdate.task_id: longer than 128 characters (3145728)"`);
  });

  it('refuses ids outside the character set', () => {
    expect(thrown(() => checkWireString('StudyReadiness.study_id', 'study 1/../x')).message).toMatchInlineSnapshot(
      `"field StudyReadiness.study_id: must be ASCII letters, digits, ".", "_", ":" and "-", got "study 1/../x""`,
    );
    expect(() => checkWireString('StudyReadiness.study_id', 'é')).toThrow(/StudyReadiness.study_id/);
  });

  it('wants manifest hashes as 64 lowercase hex digits', () => {
    expect(() => checkWireString('StudyReadiness.manifest_sha256', 'a'.repeat(64))).not.toThrow();
    expect(thrown(() => checkWireString('StudyReadiness.manifest_sha256', 'A'.repeat(64))).message).toContain('64 lowercase hex digits');
    expect(thrown(() => checkWireString('StudyReadiness.manifest_sha256', 'abc')).message).toMatchInlineSnapshot(
      `"field StudyReadiness.manifest_sha256: must be exactly 64 characters, got 3"`,
    );
  });

  it('bounds human text by code points and refuses control, separator and bidi characters', () => {
    const detail = WIRE_STRINGS['StudyReadiness.detail'];
    expect(stringViolation('😀'.repeat(1000), detail)).toBeUndefined(); // 2000 UTF-16 units, 1000 code points
    expect(stringViolation('😀'.repeat(1001), detail)).toMatch(/^longer than 1000 characters/);
    expect(stringViolation('😀'.repeat(999) + 'ab', detail)).toBe('longer than 1000 characters');
    expect(stringViolation('x'.repeat(4 * 1024 * 1024), detail)).toMatch(/^longer than 1000 characters/);
    expect(stringViolation('fewer than 10 cases — ok, naïve, 日本', detail)).toBeUndefined();
    expect(stringViolation('a\nb', detail)).toMatch(/U\+000A at index 1/);
    expect(stringViolation('\u001b[32monline', detail)).toMatch(/U\+001B/);
    expect(stringViolation('a\u0085', detail)).toMatch(/U\+0085/);
    expect(stringViolation('evil\u202egnp.exe', detail)).toMatch(/U\+202E/);
    expect(stringViolation('lone \ud800 surrogate', detail)).toMatch(/U\+D800/);
  });

  it('counts, numbers and enums', () => {
    expect(() => checkWireCount('Hello.capabilities', 32)).not.toThrow();
    expect(thrown(() => checkWireCount('Hello.capabilities', 33)).message).toBe('field Hello.capabilities: more than 32 elements (33)');
    expect(thrown(() => checkWireCount('UpdateHeader.base_model_sha256', 4096)).message).toBe('field UpdateHeader.base_model_sha256: more than 32 bytes (4096)');
    expect(() => checkWireNumber('TaskUpdate.fraction', 1)).not.toThrow();
    expect(() => checkWireNumber('TaskUpdate.fraction', Number.NaN)).toThrow(/TaskUpdate.fraction: must be a number from 0 to 1/);
    expect(() => checkWireNumber('TaskUpdate.epoch', 4e9)).toThrow(/TaskUpdate.epoch/);
    expect(() => checkWireEnum('StudyReadiness.readiness', 'READINESS_READY', ['READINESS_READY'])).not.toThrow();
    expect(() => checkWireEnum('StudyReadiness.readiness', 99, ['READINESS_READY'])).toThrow(/got 99/);
  });

  it('quotes at most a short, escaped excerpt', () => {
    expect(quoteExcerpt('\u001b[2J'.repeat(100))).toBe(`${JSON.stringify('\\u001b[2J'.repeat(8))}…`);
  });

  it('sanitises outgoing text into what the wire accepts', () => {
    expect(sanitizeWireText('cannot read\n\t /data/x.csv:\u0000 line 3\r\n')).toBe('cannot read /data/x.csv: line 3');
    expect(sanitizeWireText('\u001b[32monline\u202e')).toBe('[32monline');
    const long = sanitizeWireText('word '.repeat(1000));
    expect(Array.from(long)).toHaveLength(1000);
    expect(long.endsWith('…')).toBe(true);
    expect(stringViolation(long, WIRE_STRINGS['StudyReadiness.detail'])).toBeUndefined();
    expect(sanitizeWireText('😀'.repeat(20), 10)).toBe(`${'😀'.repeat(9)}…`);
    // Whatever goes in, what comes out passes the check.
    const nasty = Array.from({ length: 3000 }, (_, i) => String.fromCharCode((i * 7919) % 0xffff)).join('');
    expect(stringViolation(sanitizeWireText(nasty), WIRE_STRINGS['StudyReadiness.detail'])).toBeUndefined();
  });
});
