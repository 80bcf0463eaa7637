import { PALETTE, barChart, calibrationChart, esc, fmt, lineChart, page, table } from './report.js';
import type { Method, SimulationReport } from './simulate.js';

const METHODS: Method[] = ['local', 'federated', 'pooled', 'oracle'];

/** The simulation report as a self-contained HTML page. */
export function simulationHtml(r: SimulationReport): string {
  const clinics = r.clinics;
  const bySize = [...clinics].sort((a, b) => a.eligible - b.eligible);
  const aucBars = barChart(
    'Hold-out AUC per clinic (clinics ordered by cohort size)',
    bySize.map((c) => `${c.name} (${c.eligible})`),
    METHODS.map((m) => ({ name: m, color: PALETTE[m]!, values: bySize.map((c) => c.results[m]?.auc ?? null) })),
    [0.5, 1],
  );
  const gainBars = barChart(
    'Gain from joining the federation: federated AUC − local-only AUC',
    bySize.map((c) => `${c.name} (${c.eligible})`),
    [{ name: 'gain', color: PALETTE.federated!, values: bySize.map((c) => c.gain) }],
    [Math.min(-0.05, ...bySize.map((c) => c.gain ?? 0)), Math.max(0.05, ...bySize.map((c) => c.gain ?? 0))],
  );
  const rounds = lineChart('Federated evaluation per round (example-weighted over clinics)', [
    { name: 'AUC', color: PALETTE.federated!, points: r.rounds.filter((x) => x.auc !== null).map((x) => ({ x: x.round, y: x.auc! })) },
    { name: 'accuracy', color: PALETTE.pooled!, points: r.rounds.map((x) => ({ x: x.round, y: x.accuracy })) },
  ], 'hold-out metric', [0.4, 1]);
  const calibration = calibrationChart('Calibration, all hold-out patients', METHODS.filter((m) => r.overall[m] !== undefined).map((m) => ({ name: m, color: PALETTE[m]!, bins: r.overall[m]!.calibration })));
  const small = bySize.filter((c) => c.gain !== null);
  const half = Math.floor(small.length / 2);
  const mean = (xs: number[]): number => xs.reduce((s, x) => s + x, 0) / Math.max(1, xs.length);
  const smallGain = mean(small.slice(0, Math.max(1, half)).map((c) => c.gain!));
  const largeGain = mean(small.slice(Math.max(1, half)).map((c) => c.gain!));
  const body = `
<h1>fedlhs simulation: incident type 2 diabetes within 3 years</h1>
<p>${r.clinics.length} synthetic clinics (seed ${r.settings.seed}, scale ${r.settings.scale}), ${r.study.roundsCommitted} federated rounds over real gRPC
(study <code>${esc(r.study.id)}</code>, manifest sha256 <code>${esc(r.study.manifestSha256.slice(0, 16))}…</code>), TensorFlow.js backend ${esc(r.settings.backend)}.
Every method is scored on the same hold-out patients of each clinic. The oracle scores patients with their true risk from the generator's disease model: the best achievable AUC.</p>
<h2>Overall (all hold-out patients)</h2>
${table(['method', 'AUC', 'accuracy', 'Brier', 'ECE', 'patients'], METHODS.filter((m) => r.overall[m]).map((m) => [m, r.overall[m]!.auc, r.overall[m]!.accuracy, r.overall[m]!.brier, r.overall[m]!.ece, String(r.overall[m]!.n)]))}
<p>Do the small clinics gain most? Mean AUC gain from federation: ${fmt(smallGain)} for the smaller half of clinics, ${fmt(largeGain)} for the larger half.
The coordinator's normalisation equals what the clinics' (small-cell-suppressed) statistics imply to within ${r.normalizationMaxAbsDiff.toExponential(1)}; suppression moves it at most ${r.suppressionEffect.toPrecision(2)} from the pooled data's.</p>
${aucBars}${gainBars}${rounds}${calibration}
<h2>Per clinic</h2>
${table(['clinic', 'format', 'patients', 'eligible', 'train/hold-out', 'prevalence', 'local AUC', 'federated AUC', 'pooled AUC', 'oracle AUC', 'gain', 'fed. Brier', 'local Brier', 'local model on all hold-outs'],
  clinics.map((c) => [c.name, c.format, String(c.patients), String(c.eligible), `${c.train}/${c.holdout}`, `${(c.prevalence * 100).toFixed(1)}%`,
    c.results.local?.auc, c.results.federated?.auc, c.results.pooled?.auc, c.results.oracle?.auc, c.gain, c.results.federated?.brier, c.results.local?.brier, c.localOnAll?.auc]))}
<p class="note">A small clinic's hold-out set has few patients with the outcome, so its own AUC is noisy; the last column scores each clinic's local-only model on every clinic's hold-out patients (${r.overall.federated?.n ?? 0}), beside the federated model's ${fmt(r.overall.federated?.auc)} on the same patients.</p>
<h2>Data quality per clinic (aggregate counts; nothing left the clinics but the study's statistics)</h2>
${table(['clinic', 'excluded (by reason)', 'missing values per feature'], clinics.map((c) => [c.name,
  Object.entries(c.cohort.excluded).map(([k, v]) => `${k}: ${v}`).join('; '),
  c.cohort.features.filter((f) => f.missing > 0).map((f) => `${f.name} ${f.missing}`).join(', ')]))}
<h2>Per round</h2>
${table(['round', 'loss', 'accuracy', 'AUC'], r.rounds.map((x) => [String(x.round), x.loss, x.accuracy, x.auc]))}
<p class="note">Timings (ms): ${Object.entries(r.timings).map(([k, v]) => `${k} ${v}`).join(', ')}. Generated ${esc(r.createdAt)}.</p>`;
  return page('fedlhs simulation report', body);
}
