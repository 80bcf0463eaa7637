import { populationSd, type HeartReport, type HeartStrategy, type PublishedFigure } from './heart.js';
import { PALETTE, barChart, esc, fmt, page, table } from './report.js';

const mean = (xs: readonly number[]): number => xs.reduce((s, x) => s + x, 0) / Math.max(1, xs.length);

/** One row of the comparison: our mean per-site accuracy over seeds beside FLamby's published figure, if any. */
export interface HeartSummaryRow {
  method: string;
  kind: 'federated' | 'pooled' | 'local';
  mean: number;
  /** Population sd over seeds, as FLamby's ± is (numpy's std). */
  sd: number;
  perSeed: number[];
  published: PublishedFigure | undefined;
  /** The hyper-parameters of a federated run. */
  strategy?: HeartStrategy;
}

/** Every method of the report (federated runs first, then pooled and local) beside FLamby's published figures. */
export function heartSummary(r: HeartReport): HeartSummaryRow[] {
  const order = (m: string): number => (m === 'pooled' ? 1 : m.startsWith('local ') ? 2 : 0);
  return [...r.accuracy]
    .sort((a, b) => order(a.method) - order(b.method))
    .map((a) => {
      const kind = a.method === 'pooled' ? 'pooled' : a.method.startsWith('local ') ? 'local' : 'federated';
      const strategy = r.strategies.find((s) => s.strategy === a.method);
      return { method: a.method, kind, mean: mean(a.average), sd: populationSd(a.average), perSeed: a.average, published: r.published.methods[a.method], ...(strategy === undefined ? {} : { strategy }) };
    });
}

/** "0.123 ± 0.045" (the ± only with more than one seed). */
export function meanSd(mean: number, sd: number, seeds: number): string {
  return seeds > 1 ? `${fmt(mean)} ± ${fmt(sd)}` : fmt(mean);
}

/** A run's hyper-parameters as one line: the clinics' SGD rate, then the strategy's parameters. */
export function hyperParameters(s: HeartStrategy): string {
  return [`client SGD lr ${s.clientLearningRate}`, ...Object.entries(s.parameters).map(([k, v]) => `${k} ${v}`)].join(', ');
}

/**
 * The two goals of issue 9, read off a report: FedAvg inside FLamby's mean ± sd, and the best
 * federated strategy at or above FLamby's best federated figure. Undefined parts when not run.
 */
export function heartVerdict(r: HeartReport): { fedavg?: { mean: number; low: number; high: number; inside: boolean }; best?: { method: string; mean: number; flambyBest: number; flambyMethod: string; reached: boolean } } {
  const rows = heartSummary(r).filter((s) => s.kind === 'federated');
  const out: ReturnType<typeof heartVerdict> = {};
  const fedavg = rows.find((s) => s.method === 'fedavg');
  const pub = r.published.methods['fedavg'];
  if (fedavg !== undefined && pub !== undefined) {
    const low = pub.mean - pub.sd;
    const high = pub.mean + pub.sd;
    out.fedavg = { mean: fedavg.mean, low, high, inside: fedavg.mean >= low && fedavg.mean <= high };
  }
  const best = [...rows].sort((a, b) => b.mean - a.mean)[0];
  const flamby = Object.entries(r.published.methods)
    .filter(([m]) => m !== 'pooled' && !m.startsWith('local '))
    .sort((a, b) => b[1].mean - a[1].mean)[0];
  if (best !== undefined && flamby !== undefined) {
    const flambyBest = Number(flamby[1].mean.toFixed(3));
    out.best = { method: best.method, mean: best.mean, flambyBest, flambyMethod: flamby[0], reached: Number(best.mean.toFixed(3)) >= flambyBest };
  }
  return out;
}

/** The Fed-Heart-Disease benchmark report as a self-contained HTML page. */
export function heartHtml(r: HeartReport): string {
  const summary = heartSummary(r);
  const n = r.seeds.length;
  const verdict = heartVerdict(r);
  const seedsText = (xs: readonly number[]): string => xs.map((x) => fmt(x)).join(', ');
  const goals = [
    verdict.fedavg === undefined ? '' : `FedAvg ${fmt(verdict.fedavg.mean)} is ${verdict.fedavg.inside ? 'inside' : 'outside'} FLamby's mean ± sd [${fmt(verdict.fedavg.low)}, ${fmt(verdict.fedavg.high)}].`,
    verdict.best === undefined ? '' : `Best federated strategy here: ${esc(verdict.best.method)} ${fmt(verdict.best.mean)}; FLamby's best: ${fmt(verdict.best.flambyBest)} (${esc(verdict.best.flambyMethod)}).`,
  ].filter((g) => g !== '');
  const body = `
<h1>Fed-Heart-Disease: the FLamby protocol through fedlhs</h1>
<p>Four real hospitals, each an agent reading its own file through the flat-table path; each federated strategy over real gRPC with FLamby's settings:
${r.rounds} rounds × ${r.localSteps} local SGD steps, batch ${r.batchSize}, updates weighted by training-set size, FLamby's tuned learning rates and server parameters.
Logistic regression initialised as PyTorch's nn.Linear (FLamby's model): weight and bias U(±1/√13), declared in the manifest.
Pooled and local baselines trained centrally (Adam, lr 1e-3, batch 4, 50 epochs; pooled on data scaled with the pooled training statistics, as FLamby does); per-site z-scoring with each site's training statistics; FLamby's train/test split.
Metric: accuracy at 0.5 on each site's test set, averaged over the four sites; ${n} seed(s) (${r.seeds.join(', ')}), backend ${esc(r.backend)}.</p>
${goals.length === 0 ? '' : `<p><strong>${goals.join(' ')}</strong></p>`}
<h2>fedlhs beside FLamby's published results</h2>
${table(['method', `fedlhs mean${n > 1 ? ' ± sd' : ''}`, 'fedlhs per seed', 'FLamby mean ± sd', 'FLamby per seed (42–46)', 'hyper-parameters'], summary.map((s) => [
  s.method,
  meanSd(s.mean, s.sd, n),
  seedsText(s.perSeed),
  s.published === undefined ? null : meanSd(s.published.mean, s.published.sd, s.published.perSeed.length),
  s.published === undefined ? null : seedsText(s.published.perSeed),
  s.strategy === undefined ? 'Adam lr 0.001, 50 epochs' : hyperParameters(s.strategy),
]))}
<p class="note">± is the population standard deviation over seeds (numpy's std, as in FLamby's table). FLamby's figures are its published per-seed results (${esc(r.published.source)}). FLamby also reports Scaffold ${fmt(r.published.methods['scaffold']?.mean ?? Number.NaN)} and Cyclic ${fmt(r.published.methods['cyclic']?.mean ?? Number.NaN)}, which fedlhs does not implement.</p>
${barChart('Mean per-site test accuracy: fedlhs vs FLamby published', summary.map((s) => s.method), [
  { name: 'fedlhs', color: PALETTE.federated!, values: summary.map((s) => s.mean) },
  { name: 'FLamby', color: PALETTE.published!, values: summary.map((s) => s.published?.mean ?? null) },
], [0.4, 0.9])}
<h2>Accuracy per site test set (mean over seeds)</h2>
${table(['method', ...r.sites.map((s) => `${s.site} (${s.test})`)], summary.map((s) => [s.method, ...r.sites.map((site) => mean(r.accuracy.find((a) => a.method === s.method)?.perSite[site.site] ?? []))]))}
<p class="note">Local models are scored on all four test sets, as FLamby reports them. Switzerland's test set is 15/16 positive and all 30 of its training cases are positive (the study sets data.minCellCount 0 so that it may train, as in FLamby).</p>
<h2>Data and credit</h2>
<p>${esc(r.credit)}</p>
<p class="note">Generated ${esc(r.createdAt)}.</p>`;
  return page('Fed-Heart-Disease benchmark report', body);
}
