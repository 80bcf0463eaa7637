import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { EVENT_KEYS, isEventKey } from './events.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** The .ts files under `dir`, without dist, node_modules and (unless asked) tests. */
function sources(dir: string, withTests = false): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.name === 'dist' || e.name === 'node_modules') continue;
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') && (withTests || !e.name.endsWith('.test.ts'))) out.push(p);
    }
  };
  walk(dir);
  return out;
}

const packages = readdirSync(join(root, 'packages')).map((p) => join(root, 'packages', p, 'src'));
const appDirs = ['coordinator/src', 'node-agent/src', 'simulator/src'].map((d) => join(root, d));
const files = [...appDirs, ...packages].flatMap((d) => sources(d));

/** The agent's audit-record types: a separate vocabulary (snake_case, no dot). */
const auditTypes = new Set(
  [...(/event:\s*((?:'[a-z_]+'\s*\|?\s*)+);/.exec(readFileSync(join(root, 'node-agent/src/agent-state.ts'), 'utf8'))?.[1] ?? '').matchAll(/'([a-z_]+)'/g)].map((m) => m[1]!),
);

/** Every `event: '…'` literal (quotes or template) in a file, with its line number. */
function eventLiterals(text: string): { key: string; template: boolean; line: number }[] {
  return [...text.matchAll(/\bevent:\s*(['"`])((?:(?!\1)[^\\\n]|\\.)*)\1/g)].map((m) => ({
    key: m[2]!,
    template: m[1] === '`',
    line: text.slice(0, m.index).split('\n').length,
  }));
}

/** A template literal's keys: `study.${x}` matches study.completed, study.failed, … */
function templateMatches(template: string): string[] {
  const pattern = new RegExp(`^${template.split(/\$\{[^}]*\}/).map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('[a-z_-]+')}$`);
  return EVENT_KEYS.filter((k) => pattern.test(k));
}

/**
 * The text of each `log.warn(…)`, `logger.error(…)`, `log?.fatal(…)` call: from the opening to
 * the balancing parenthesis, string contents skipped.
 */
function warnOrAboveCalls(text: string): { call: string; line: number }[] {
  const out: { call: string; line: number }[] = [];
  for (const m of text.matchAll(/\b(?:log|logger)\??\.(?:warn|error|fatal)\(/g)) {
    let depth = 0;
    let quote: string | undefined;
    let i = m.index + m[0].length - 1;
    for (; i < text.length; i++) {
      const c = text[i]!;
      if (quote !== undefined) {
        if (c === '\\') i++;
        else if (c === quote) quote = undefined;
      } else if (c === "'" || c === '"' || c === '`') quote = c;
      else if (c === '(') depth++;
      else if (c === ')' && --depth === 0) break;
    }
    out.push({ call: text.slice(m.index, i + 1), line: text.slice(0, m.index).split('\n').length });
  }
  return out;
}

describe('event keys', () => {
  it('lists each key once, dotted, lower case', () => {
    expect(new Set(EVENT_KEYS).size).toBe(EVENT_KEYS.length);
    for (const k of EVENT_KEYS) expect(k).toMatch(/^[a-z_]+(-[a-z_]+)*\.[a-z_]+(-[a-z_]+)*$/);
  });

  it('finds the sources and the audit vocabulary (the scan below is not vacuous)', () => {
    expect(files.length).toBeGreaterThan(50);
    expect(auditTypes.has('update_sent')).toBe(true);
    expect(eventLiterals("log.warn({ event: 'round.committed' }); x({ event: `study.${s}` })")).toEqual([
      { key: 'round.committed', template: false, line: 1 },
      { key: 'study.${s}', template: true, line: 1 },
    ]);
    expect(templateMatches('study.${state.toLowerCase()}')).toContain('study.completed');
    expect(warnOrAboveCalls("log.warn({ a: ')' }, 'x (y');\nthis.log.error({ event: 'e' }, `z ${f(1)}`)").map((c) => c.line)).toEqual([1, 2]);
  });

  it('every `event:` literal in the sources is in the list (or is an agent audit-record type)', () => {
    const unknown: string[] = [];
    for (const file of files) {
      for (const { key, template, line } of eventLiterals(readFileSync(file, 'utf8'))) {
        const known = template && key.includes('${') ? templateMatches(key).length > 0 : isEventKey(key) || (!key.includes('.') && auditTypes.has(key));
        if (!known) unknown.push(`${relative(root, file)}:${line}: ${key}`);
      }
    }
    expect(unknown).toEqual([]);
  });

  it('every log line at warn or above carries an event key', () => {
    const missing: string[] = [];
    for (const file of files) {
      for (const { call, line } of warnOrAboveCalls(readFileSync(file, 'utf8'))) {
        if (!/\bevent:/.test(call)) missing.push(`${relative(root, file)}:${line}: ${call.split('\n')[0]}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('tests and the simulator wait only on listed events (or audit-record types)', () => {
    const waited = [...appDirs, join(root, 'tests')].flatMap((d) => sources(d, true));
    const unknown: string[] = [];
    for (const file of waited) {
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(/(?:waitFor(?:Next)?Event\(\s*|\.event\s*===\s*)'([^']+)'/g)) {
        const key = m[1]!;
        if (!isEventKey(key) && !(!key.includes('.') && auditTypes.has(key))) unknown.push(`${relative(root, file)}:${text.slice(0, m.index).split('\n').length}: ${key}`);
      }
    }
    expect(unknown).toEqual([]);
  });
});
