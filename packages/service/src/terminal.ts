/**
 * Text for a terminal. Whatever a CLI prints may hold text another party chose (a clinic's site
 * name or readiness detail, a coordinator's error message, a manifest's description): a raw ESC
 * sequence in it can erase lines and draw fake ones ("\x1b[2K\r... online"), and a bidi override
 * can reorder what the reader sees. `forTerminal` makes every such character visible instead.
 */

export interface ForTerminalOptions {
  /**
   * Keep line feeds: for a whole block of output whose lines the CLI itself made. Anything else
   * (a table cell, a value in a line) leaves this off, so a value cannot start a line of its own.
   */
  newlines?: boolean;
}

/**
 * What is escaped: C0 controls (U+0000–U+001F, so ESC, CR, BS, BEL and TAB too), DEL (U+007F), C1
 * controls (U+0080–U+009F, among them the one-byte CSI U+009B), the bidi marks, embeddings,
 * overrides and isolates (U+061C, U+200E, U+200F, U+202A–U+202E, U+2066–U+2069), and the Unicode
 * line and paragraph separators (U+2028, U+2029).
 */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
const UNSAFE_BUT_LF = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

function escape(ch: string): string {
  const code = ch.charCodeAt(0);
  return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

/**
 * `text` with every control character, ESC sequence introducer and bidi control written as a
 * visible escape (`\x1b`, `\x9b`, `\u202e`), so printing it cannot move the cursor, erase,
 * recolour or reorder anything. Printable text, including non-Latin scripts and emoji, is kept.
 *
 * ```ts
 * forTerminal('ok\x1b[2K\rnode online') // 'ok\\x1b[2K\\x0dnode online'
 * ```
 */
export function forTerminal(text: string, options: ForTerminalOptions = {}): string {
  return text.replace(options.newlines === true ? UNSAFE_BUT_LF : UNSAFE, escape);
}

/** Whether `text` holds anything `forTerminal` would escape (line feeds included). */
export function hasTerminalControls(text: string): boolean {
  return new RegExp(UNSAFE.source).test(text);
}

/**
 * A writer for a CLI's output stream: every block is passed through `forTerminal` (line feeds
 * kept) before it is written, so a printer cannot forget to escape a value it interpolates.
 */
export function terminalWriter(stream: { write(text: string): unknown }): (text: string) => void {
  return (text) => void stream.write(forTerminal(text, { newlines: true }));
}

/**
 * Rows as aligned columns (two spaces apart, trailing spaces trimmed), each cell passed through
 * `forTerminal` before the widths are measured: a CLI's tables cannot print a raw control
 * character, whoever chose the cell's text, and escaped cells keep the columns aligned.
 */
export function terminalTable(rows: readonly (readonly string[])[]): string {
  if (rows.length === 0) return '';
  const cells = rows.map((r) => r.map((c) => forTerminal(c)));
  const widths = cells[0]!.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells.map((r) => r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd()).join('\n');
}
