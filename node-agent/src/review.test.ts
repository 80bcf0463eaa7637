import { manifestHash, seriesTemplateHash, seriesVarying, validateManifest, type StudyManifest } from '@fedlhs/core';
import { describe, expect, it } from 'vitest';
import { formatChanges, formatManifest, formatRun, formatSeries, whatLeaves } from './review.js';
import { runStudy, testTemplate } from './series-test-support.js';

function manifest(learningRate = 0.05, extra: (m: Record<string, unknown>) => void = () => undefined): StudyManifest {
  const m: Record<string, unknown> = {
    apiVersion: 'fedlhs.v1',
    kind: 'Study',
    name: 'readmit-30d',
    description: 'Thirty-day readmission.',
    model: {
      format: 'tfjs-layers',
      topology: {
        class_name: 'Sequential',
        config: {
          layers: [
            { class_name: 'Dense', config: { name: 'hidden', units: 8, activation: 'relu', batch_input_shape: [null, 3] } },
            { class_name: 'Dropout', config: { name: 'drop', rate: 0.1 } },
            { class_name: 'Dense', config: { name: 'output', units: 1, activation: 'sigmoid' } },
          ],
        },
      },
    },
    training: { loss: 'binaryCrossentropy', optimizer: { name: 'sgd', learningRate }, localEpochs: 2, batchSize: 32 },
    rounds: 5,
    clients: { min: 3, max: 4, quorum: 2 },
    deadlines: { roundSeconds: 60, evaluationSeconds: 30 },
    data: { featureSpec: 'flat-table/v1', features: ['age', 'bmi', 'los'], label: 'readmitted', holdoutFraction: 0.25 },
    aggregation: { strategy: 'fedavg' },
  };
  extra(m);
  return validateManifest(m);
}

describe('formatManifest', () => {
  const m = manifest();
  const hash = manifestHash(m);
  const text = formatManifest(m, hash, 'st_123');

  it('shows the hash, the layers, the features and what leaves the clinic', () => {
    expect(text).toContain(`  manifest sha256  ${hash}\n`);
    expect(text).toContain('Dense(8, relu)');
    expect(text).toContain('  model            Sequential: input [3] → Dense(8, relu) → Dropout(rate 0.1) → Dense(1, sigmoid)\n');
    expect(text).toContain('  features (3)    age, bmi, los\n');
    expect(text).toContain('  what leaves      On connecting: this agent\'s version, TensorFlow.js backend and platform.\n');
    expect(text.split('\n').at(-1)).toBe('                   No record, no identifier, no date, no value of any one patient ever leaves.');
    expect(text).not.toContain('statistics');
  });

  it('escapes control characters and line feeds in what the coordinator sent (no fake lines, no cursor moves)', () => {
    const hostile = formatManifest(manifest(0.05, (x) => (x.description = 'ok\x1b[2K\r\n  status           approved by everyone\u202e')), 'h', 'st_9');
    expect(hostile).toContain('  description      ok\\x1b[2K\\x0d\\x0a  status           approved by everyone\\u202e\n');
    expect(hostile).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e]/);
    expect(hostile.split('\n').filter((l) => l.trimStart().startsWith('status'))).toEqual([]);
  });

  it('names the label counts and feature statistics that leave when the study uses federated statistics', () => {
    const federated = formatManifest(manifest(0.05, (x) => ((x.data as Record<string, unknown>).normalization = 'federated-zscore')), 'h', 'st_2');
    expect(federated).toContain('the number of training records and of those with the outcome (label positives, i.e. cases), each withheld when it or the number of non-cases is below 10');
    expect(federated).toContain('for each of the 3 features: the count of values, their sum and sum of squares, the count of missing values, and a histogram');
  });

  it('renders the whole review text', () => {
    expect(text.replace(hash, '<hash>')).toMatchInlineSnapshot(`
      "Study readmit-30d  (study id st_123)
        manifest sha256  <hash>
        description      Thirty-day readmission.
        model            Sequential: input [3] → Dense(8, relu) → Dropout(rate 0.1) → Dense(1, sigmoid)
        training         sgd (learning rate 0.05), loss binaryCrossentropy, 2 local epoch(s), batch 32
        rounds           5; 3-4 clinics per round, quorum 2; deadlines 60s training, 30s evaluation
        data             feature spec flat-table/v1; label "readmitted"; 25% held out for evaluation
        features (3)    age, bmi, los
        normalisation    none
        aggregation      fedavg
        release          round chosen by best-validation-auc on the validation part; 50% of the hold-out kept as the test part for the published figures; risk bands low <0.1, moderate <0.2, high ≤1
        what leaves      On connecting: this agent's version, TensorFlow.js backend and platform.
                         For each study: whether this clinic takes part (READY, not approved, cohort too small, ...) and why, in words that never give a small count.
                         Each training round: the trained model weights (the whole model, not a difference), the number of training records used, and loss, accuracy and AUC on them.
                         Each evaluation: on the hold-out records' validation part (50 %, used to choose the released round): their number, loss, accuracy and AUC;
                           and for the validation and the test part each: the number of records and of cases, AUC and its standard error, Brier score, calibration slope and intercept,
                           and a 10-bin reliability table (records, sum of predicted risks and cases per bin). The coordinator shows none of these for a part with fewer than
                           10 cases or non-cases, and no bin below 10.
                         After the study, if this clinic deploys its release: when the export changes, the same figures for the release on the refreshed export's test records (the hold-out split's test part, never trained on), with an opaque digest of the export; nothing when they hold fewer than 10 records, cases or non-cases.
                         No record, no identifier, no date, no value of any one patient ever leaves."
    `);
  });

  it('omits an empty description', () => {
    const plain = manifest(0.05, (x) => delete x.description);
    const out = formatManifest(plain, 'h', 'st_1');
    expect(out).not.toContain('description');
    expect(out.split('\n')).toHaveLength(19);
  });

  it('says where training starts when the manifest warm-starts from a release', () => {
    const warm = manifest(0.05, (x) => void ((x.model as Record<string, unknown>).initialWeights = { release: { studyName: 'readmit-30d', version: 2, weightsSha256: 'ab'.repeat(32) } }));
    expect(formatManifest(warm, 'h', 'st_1')).toContain(`  starts from      release readmit-30d v2 (weights sha256 ${'ab'.repeat(32)})`);
  });
});

describe('formatChanges', () => {
  it('lists a changed learning rate by path with before and after', () => {
    const before = manifest(0.05);
    const after = manifest(0.1);
    const beforeHash = manifestHash(before);
    expect(formatChanges(before, after, beforeHash)).toBe(
      [`  changes since the approved manifest ${beforeHash.slice(0, 12)}:`, '    training.optimizer.learningRate: 0.05 → 0.1'].join('\n'),
    );
  });

  it('quotes strings and lists several changes in path order', () => {
    const before = manifest();
    const after = manifest(0.05, (x) => {
      (x.data as Record<string, unknown>).label = 'died';
      x.rounds = 10;
    });
    expect(formatChanges(before, after, 'abcdef0123456789').split('\n')).toEqual([
      '  changes since the approved manifest abcdef012345:',
      '    data.label: "readmitted" → "died"',
      '    rounds: 5 → 10',
    ]);
  });

  it('says there are no differences for identical manifests', () => {
    expect(formatChanges(manifest(), manifest(), '0123456789abcdef')).toBe('  no differences from the approved manifest 0123456789ab');
  });
});

describe('series in review', () => {
  const t = testTemplate('lhs', (x) => (x.description = 'Yearly retraining.'));
  const hash = seriesTemplateHash(t);

  it('shows a series with its schedule, start, promotion, window, exactly what may vary, and how to approve it', () => {
    const text = formatSeries(t, { hash, approvedAt: null, approvedBy: null }, Date.UTC(2026, 0, 1));
    const shown = text.split('\n');
    expect(shown.slice(0, 6)).toEqual([
      'Series lhs',
      `  template sha256  ${hash}`,
      '  description      Yearly retraining.',
      '  schedule         cron "0 0 1 1 *" (UTC)',
      '  runs start from  the current champion release (warm start)',
      "  promotion        automatic: the new model replaces the champion when its AUC is at least +0.01 above the champion's on the same test patients, pooled over the clinics with its 95 % interval above 0, at least 1 clinic(s) compared, and no clinic worse by more than 0.05",
    ]);
    expect(text).toContain('  data window      none: every run reads the same data definition\n');
    expect(text).toContain('  may vary by run  series.run: the run number\n');
    expect(text).toContain('                   model.initialWeights: the weights training starts from (the champion of the time)\n');
    expect(shown.filter((l) => /^ {2}may vary by run|^ {19}[a-zA-Z.]+: /.test(l)).map((l) => l.trim().split(':')[0]!.replace('may vary by run  ', ''))).toEqual([...seriesVarying(t)]);
    expect(text).toContain('  each run, as a run today would be:\n');
    expect(text).toContain('    training         sgd (learning rate 0.05), loss binaryCrossentropy, 1 local epoch(s), batch 32\n');
    expect(text).toContain('each evaluation also scores that release on the same test records');
    expect(shown.at(-1)).toBe(`  status           PENDING — approve every run of this series that changes only the fields above with: fedlhs-agent approve ${hash}`);
    expect(formatSeries(t, { hash, approvedAt: Date.UTC(2026, 0, 2), approvedBy: 'operator:ann' }).split('\n').at(-1)).toBe('  status           approved 2026-01-02T00:00:00.000Z by operator:ann');
  });

  it('says for a data-triggered series exactly what the agent sends, and that a small count is only "suppressed"', () => {
    const data = testTemplate('lhs', (x) => (x['schedule'] = { type: 'data', newLabelled: 200 }));
    const text = formatSeries(data, { hash: seriesTemplateHash(data), approvedAt: null, approvedBy: null }, Date.UTC(2026, 0, 1));
    expect(text).toContain('  schedule         when the clinics report at least 200 newly labelled patients in all\n');
    expect(text).toContain('  sends            once approved, a SeriesDataReport for this series');
    expect(text).toContain('minus those this clinic had when it sent READY for the last run');
    expect(text).toContain('below minCellCount (5) only "suppressed" is sent, never the count');
    expect(text).toContain('series_data_sent');
    expect(formatSeries(t, { hash, approvedAt: null, approvedBy: null }, Date.UTC(2026, 0, 1))).not.toContain('SeriesDataReport');
  });

  it('shows each run: number, champion, window, and whether the series approval covers it and why not', () => {
    const covered = runStudy(t, 2, { champion: { version: 1, weightsSha256: 'd'.repeat(64) } });
    const m = validateManifest(JSON.parse(covered.manifestJson));
    const ok = formatRun(m, covered.manifestSha256, covered.studyId, { approved: true, via: 'series', changes: [], detail: '' });
    expect(ok.split('\n')).toEqual([
      '  run 2 of lhs  (study id st-lhs-2)',
      `    manifest sha256  ${covered.manifestSha256}`,
      `    template sha256  ${hash}`,
      `    champion         release v1 (weights sha256 ${'d'.repeat(64)})`,
      '    index window     none (flat table)',
      '    status           approved: covered by the series approval (changes only what the series lets vary)',
    ]);
    const detail = `series lhs approved, but this run changes training.localEpochs: needs approval of manifest ${covered.manifestSha256}`;
    const not = formatRun(m, covered.manifestSha256, covered.studyId, { approved: false, changes: [{ path: 'training.localEpochs', before: 1, after: 5 }], detail });
    expect(not).toContain('    changes          training.localEpochs: 1 → 5\n');
    expect(not).toContain(`    status           NOT APPROVED: ${detail}\n`);
    expect(not.split('\n').at(-1)).toBe(`                     approve this run alone with: fedlhs-agent approve ${covered.manifestSha256}`);
  });

  it('says in what leaves that a series run sends the champion\'s figures and the AUC difference', () => {
    const covered = runStudy(t, 2);
    const lines = whatLeaves(validateManifest(JSON.parse(covered.manifestJson))).join('\n');
    expect(lines).toContain('run 2 of the series lhs');
    expect(lines).toContain('the difference in AUC between this round\'s model and the champion, with its standard error: aggregates only, never a score');
    expect(whatLeaves(manifest()).join('\n')).not.toContain('champion');
  });
});
