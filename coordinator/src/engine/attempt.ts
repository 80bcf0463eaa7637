/**
 * The cohort of one round attempt (design §1.4): the clinics selected for it, in memory. Training
 * (and later the secure-aggregation stages) plans over `active()`; a clinic that declined, failed,
 * was rejected with a closing reason or went missing past a stage deadline is dropped with its
 * reason, which the attempt's failure reason can name. Tasks are rows, so the cohort of a past
 * attempt can be rebuilt from `tasks` for audit; an attempt never outlives its process.
 */
export class Cohort {
  readonly selected: ReadonlySet<string>;
  private readonly dropped = new Map<string, { phase: string; reason: string }>();

  constructor(selected: Iterable<string>) {
    this.selected = new Set(selected);
  }

  /** The selected clinics not dropped, in selection order. */
  active(): string[] {
    return [...this.selected].filter((id) => !this.dropped.has(id));
  }

  has(nodeId: string): boolean {
    return this.selected.has(nodeId) && !this.dropped.has(nodeId);
  }

  drop(nodeId: string, phase: string, reason: string): void {
    if (this.selected.has(nodeId) && !this.dropped.has(nodeId)) this.dropped.set(nodeId, { phase, reason });
  }

  /** The dropped members with where and why. */
  drops(): { nodeId: string; phase: string; reason: string }[] {
    return [...this.dropped].map(([nodeId, d]) => ({ nodeId, ...d }));
  }

  get size(): number {
    return this.selected.size;
  }
}
