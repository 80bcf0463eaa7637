import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadFedlhsProto } from './index.js';

const pkg = join(dirname(fileURLToPath(import.meta.url)), '..');

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => (statSync(join(dir, f)).isDirectory() ? files(join(dir, f)) : [join(dir, f)]));
}

// The "Original file:" header holds the absolute path of the checkout; it is not content.
const normalise = (text: string): string => text.replace(/^\/\/ Original file: .*$/m, '');

describe('generated proto types', () => {
  it('match a fresh run of proto-loader-gen-types with the runtime loader options', () => {
    const out = mkdtempSync(join(tmpdir(), 'fedlhs-gen-'));
    execFileSync(process.execPath, [join(pkg, 'scripts', 'generate.mjs'), out], { stdio: 'pipe' });
    const committed = join(pkg, 'src', 'generated');
    const fresh = files(out).map((f) => relative(out, f)).sort();
    expect(files(committed).map((f) => relative(committed, f)).sort()).toEqual(fresh);
    for (const f of fresh) {
      expect(normalise(readFileSync(join(committed, f), 'utf8')), `${f} is stale: run npm run proto:gen`).toBe(normalise(readFileSync(join(out, f), 'utf8')));
    }
  });

  it('loads both services with streaming shapes as documented', () => {
    const proto = loadFedlhsProto();
    const federation = proto.fedlhs.v1.Federation.service;
    expect(Object.keys(federation).sort()).toEqual(['DownloadModel', 'DownloadReleaseFile', 'ListReleases', 'ListStudies', 'RenewCertificate', 'ReportEvaluation', 'ReportReleasePerformance', 'ReportStage', 'ReportStatistics', 'Session', 'UploadUpdate']);
    expect([federation.Session.requestStream, federation.Session.responseStream]).toEqual([true, true]);
    expect([federation.DownloadModel.requestStream, federation.DownloadModel.responseStream]).toEqual([false, true]);
    expect([federation.UploadUpdate.requestStream, federation.UploadUpdate.responseStream]).toEqual([true, false]);
    expect([federation.DownloadReleaseFile.requestStream, federation.DownloadReleaseFile.responseStream]).toEqual([false, true]);
    expect([federation.ListReleases.requestStream, federation.ListReleases.responseStream]).toEqual([false, false]);
    expect(Object.keys(proto.fedlhs.v1.Enrolment.service)).toEqual(['Enrol']);
  });

  it('never carries weights as repeated float', () => {
    const protoDir = join(pkg, '..', '..', 'proto', 'fedlhs', 'v1');
    for (const f of readdirSync(protoDir).filter((name) => name.endsWith('.proto'))) {
      expect(readFileSync(join(protoDir, f), 'utf8'), f).not.toMatch(/repeated\s+(float|double)/);
    }
  });
});
