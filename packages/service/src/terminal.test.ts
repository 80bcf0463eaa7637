import { describe, expect, it } from 'vitest';
import { forTerminal, hasTerminalControls, terminalTable, terminalWriter } from './terminal.js';

describe('forTerminal', () => {
  it('writes ESC sequences, CR and other C0 controls as visible escapes', () => {
    expect(forTerminal('clinic-a\x1b[2K\r  node_x  clinic-b  online')).toMatchInlineSnapshot(`"clinic-a\\x1b[2K\\x0d  node_x  clinic-b  online"`);
    expect(forTerminal('a\x00b\x07c\x08d\x7fe')).toBe('a\\x00b\\x07c\\x08d\\x7fe');
    expect(forTerminal('tab\there\nline')).toBe('tab\\x09here\\x0aline');
  });

  it('escapes C1 controls (the one-byte CSI U+009B) and bidi controls', () => {
    expect(forTerminal('x\u009b2Ky')).toBe('x\\x9b2Ky');
    expect(forTerminal('\u0085\u0090\u009f')).toBe('\\x85\\x90\\x9f');
    const bidi = '\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c\u2028\u2029';
    expect(forTerminal(`a${bidi}b`)).toBe('a\\u202a\\u202b\\u202c\\u202d\\u202e\\u2066\\u2067\\u2068\\u2069\\u200e\\u200f\\u061c\\u2028\\u2029b');
  });

  it('keeps printable text of any script, and line feeds only when asked', () => {
    const text = 'Klinik Müller — 東京病院 — مستشفى 🏥 ½ «x»';
    expect(forTerminal(text)).toBe(text);
    expect(forTerminal('one\ntwo\x1b[31m', { newlines: true })).toBe('one\ntwo\\x1b[31m');
    expect(forTerminal('a\r\nb', { newlines: true })).toBe('a\\x0d\nb');
  });

  it('leaves nothing a terminal would act on, and is idempotent on its output', () => {
    let all = '';
    for (let c = 0; c < 0x3000; c++) all += String.fromCharCode(c);
    const once = forTerminal(all);
    expect(hasTerminalControls(once)).toBe(false);
    expect(forTerminal(once)).toBe(once);
    expect(hasTerminalControls('plain')).toBe(false);
    expect(hasTerminalControls('a\u202eb')).toBe(true);
  });

  it('terminalWriter escapes every block it writes, keeping its line feeds', () => {
    const written: string[] = [];
    const out = terminalWriter({ write: (t: string) => written.push(t) });
    out('node  \x1b[2K\rfake  online\n');
    expect(written).toEqual(['node  \\x1b[2K\\x0dfake  online\n']);
  });
});

describe('terminalTable', () => {
  it('escapes every cell before aligning, so a hostile cell draws no row of its own', () => {
    const text = terminalTable([
      ['NODE', 'SITE', 'STATUS'],
      ['node_1', 'evil\x1b[2K\r\x1b[1Anode_9  trusted  online', 'offline'],
      ['node_2', 'b\u202eenilno', 'online'],
    ]);
    expect(hasTerminalControls(text.replaceAll('\n', ''))).toBe(false);
    expect(text.split('\n')).toHaveLength(3);
    expect(text).toMatchInlineSnapshot(`
      "NODE    SITE                                           STATUS
      node_1  evil\\x1b[2K\\x0d\\x1b[1Anode_9  trusted  online  offline
      node_2  b\\u202eenilno                                  online"
    `);
    expect(terminalTable([])).toBe('');
  });
});
