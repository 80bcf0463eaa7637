import type { HeartReport } from './heart.js';
import { PALETTE, barChart, esc, page, table } from './report.js';

const mean = (xs: number[]): number => xs.reduce((s, x) => s + x, 0) / Math.max(1, xs.length);
const sd = (xs: number[]): number => {
  const m = mean(xs);
  return Math.sqrt(xs.reduce((s, x) => s + (x - m) ** 2, 0) / Math.max(1, xs.length - 1));
};

/** Mean per-site accuracy of a method next to FLamby's published figure, if any. */
export function heartSummary(r: HeartReport): { method: string; mean: number; sd: number; published: number | undefined }[] {
  return r.accuracy.map((a) => {
    const site = a.method.startsWith('local ') ? a.method.slice(6) : undefined;
    const published = a.method === 'pooled' ? r.published.pooled : a.method === 'fedavg' ? r.published.fedavg : site === undefined ? undefined : r.published.local[site];
    return { method: a.method, mean: mean(a.average), sd: sd(a.average), published };
  });
}

/** The Fed-Heart-Disease benchmark report as a self-contained HTML page. */
export function heartHtml(r: HeartReport): string {
  const summary = heartSummary(r);
  const body = `
<h1>Fed-Heart-Disease: the FLamby protocol through fedlhs</h1>
<p>Four real hospitals, each an agent reading its own file through the flat-table path; FedAvg over real gRPC (15 rounds × 100 local SGD steps, batch 4, lr 1e-3);
pooled and local baselines trained centrally (Adam, lr 1e-3, batch 4, 50 epochs); per-site z-scoring with each site's training statistics; FLamby's train/test split.
Metric: accuracy at 0.5 on each site's test set, averaged over the four sites; ${r.seeds.length} seed(s) (${r.seeds.join(', ')}), backend ${esc(r.backend)}.</p>
${table(['method', 'mean accuracy', 'sd over seeds', 'FLamby published'], summary.map((s) => [s.method, s.mean, r.seeds.length > 1 ? s.sd : null, s.published ?? null]))}
${barChart('Mean per-site test accuracy: fedlhs vs FLamby published', summary.map((s) => s.method), [
  { name: 'fedlhs', color: PALETTE.federated!, values: summary.map((s) => s.mean) },
  { name: 'FLamby', color: PALETTE.published!, values: summary.map((s) => s.published ?? null) },
], [0.4, 0.9])}
<h2>Accuracy per site test set (mean over seeds)</h2>
${table(['method', ...r.sites.map((s) => `${s.site} (${s.test})`)], r.accuracy.map((a) => [a.method, ...r.sites.map((s) => mean(a.perSite[s.site] ?? []))]))}
<p class="note">Local models are scored on all four test sets, as FLamby reports them. Switzerland's test set is 15/16 positive and its training set has one negative case.</p>
<h2>Data and credit</h2>
<p>${esc(r.credit)}</p>
<p class="note">Generated ${esc(r.createdAt)}.</p>`;
  return page('Fed-Heart-Disease benchmark report', body);
}
