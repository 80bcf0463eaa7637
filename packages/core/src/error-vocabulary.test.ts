/**
 * A ratchet for issue 10 step 2d: no source constructs a FedlhsError in the deprecated
 * three-argument form (a class-like code outside `ERRORS`, a `reason`, or a code the scan cannot
 * read), and no source tests for a code outside `ERRORS`. Files still being converted by other
 * work are listed in `PENDING` with the reason; remove an entry when its file is converted.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { ERRORS } from './errors.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/**
 * Paths (files, or directories ending in '/') not yet scanned, with why. Everything else under
 * packages/{name}/src, coordinator/src, node-agent/src and simulator/src is.
 */
const PENDING: Readonly<Record<string, string>> = {
  'packages/core/src/errors.ts': 'defines the class and the deprecated form; errorFromBody rebuilds a code read from the wire, checked against ERRORS',
};

function pending(path: string): boolean {
  return Object.keys(PENDING).some((p) => (p.endsWith('/') ? path.startsWith(p) : path === p));
}

/** The non-test .ts sources under `dir` (relative to the repository root). */
function sources(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(join(root, d), { withFileTypes: true })) {
      if (e.name === 'dist' || e.name === 'node_modules' || e.name === 'generated') continue;
      const p = `${d}/${e.name}`;
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') && !e.name.endsWith('.test.ts')) out.push(p);
    }
  };
  walk(dir);
  return out;
}

const dirs = [...readdirSync(join(root, 'packages')).map((p) => `packages/${p}/src`), 'coordinator/src', 'node-agent/src', 'simulator/src'];
const files = dirs.flatMap(sources);

/** The deprecated-form constructions and legacy-code tests in one file, as "line: text". */
function legacyUses(text: string, fileName = 'x.ts'): string[] {
  const sf = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true);
  const out: string[] = [];
  const report = (node: ts.Node, why: string): void => {
    const line = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1;
    out.push(`${line}: ${why}: ${node.getText(sf).split('\n')[0]!.slice(0, 120)}`);
  };
  const known = (arg: ts.Expression | undefined): string | undefined => {
    if (arg === undefined || !ts.isStringLiteralLike(arg)) return 'code is not a string literal';
    return Object.hasOwn(ERRORS, arg.text) ? undefined : `code ${arg.text} is not in ERRORS`;
  };
  const visit = (node: ts.Node): void => {
    if (ts.isNewExpression(node) && ts.isIdentifier(node.expression) && node.expression.text === 'FedlhsError') {
      const args = node.arguments ?? [];
      const bad = known(args[0]);
      if (bad !== undefined) report(node, bad);
      const options = args[2];
      if (options !== undefined && ts.isObjectLiteralExpression(options)) {
        for (const p of options.properties) if (p.name !== undefined && ts.isIdentifier(p.name) && p.name.text === 'reason') report(node, 'a reason option');
      }
    }
    if (ts.isCallExpression(node) && ts.isIdentifier(node.expression) && node.expression.text === 'isFedlhsError' && node.arguments.length > 1) {
      const bad = known(node.arguments[1]);
      if (bad !== undefined) report(node, bad);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

describe('the error vocabulary ratchet', () => {
  it('finds the deprecated forms it is meant to find', () => {
    const found = legacyUses(
      [
        "throw new FedlhsError('FAILED_PRECONDITION', 'x');",
        "throw new FedlhsError('INVALID_ARGUMENT', 'x', { reason: 'BAD_HEADER' });",
        "throw new FedlhsError(gone ? 'NOT_FOUND' : 'STALE', 'x');",
        "if (isFedlhsError(err, 'INVALID_MANIFEST')) {}",
        "throw new FedlhsError('STALE', 'x');",
        "throw new FedlhsError('NOT_FOUND', 'x', { details: { what: 'study' } });",
        "if (isFedlhsError(err, 'DATA_NOT_READY') || isFedlhsError(err)) {}",
      ].join('\n'),
    );
    expect(found).toMatchInlineSnapshot(`
      [
        "1: code FAILED_PRECONDITION is not in ERRORS: new FedlhsError('FAILED_PRECONDITION', 'x')",
        "2: a reason option: new FedlhsError('INVALID_ARGUMENT', 'x', { reason: 'BAD_HEADER' })",
        "3: code is not a string literal: new FedlhsError(gone ? 'NOT_FOUND' : 'STALE', 'x')",
        "4: code INVALID_MANIFEST is not in ERRORS: isFedlhsError(err, 'INVALID_MANIFEST')",
      ]
    `);
  });

  it('scans the sources', () => {
    expect(files.length).toBeGreaterThan(100);
    expect(files).toContain('packages/model/src/build.ts');
    expect(files).toContain('node-agent/src/local-data.ts');
  });

  it('finds no deprecated FedlhsError form outside the pending files', () => {
    const found = files.filter((f) => !pending(f)).flatMap((f) => legacyUses(readFileSync(join(root, f), 'utf8'), f).map((u) => `${f}:${u}`));
    expect(found).toEqual([]);
  });
});
