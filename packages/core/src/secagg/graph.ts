/**
 * Neighbourhoods of SecAgg+ (Bell et al. 2020, "Secure Single-Server Aggregation with
 * (Poly)Logarithmic Overhead"): instead of every pair of clinics agreeing masks and every clinic
 * sharing its secrets with all others (Bonawitz et al. 2017), each clinic does both only with its
 * k neighbours in a sparse graph. The graph is drawn from a public seed so that every party can
 * recompute it; its randomness comes from an AES-256-CTR stream (stream.ts), never Math.random.
 *
 * Node ids are sorted first, so the graph depends on the set of ids and the seed, not on the
 * order a caller lists them in.
 */
import { FedlhsError } from '../errors.js';
import { KeyStream, checkSeed } from './stream.js';

/**
 * `ring`: ⌊k/2⌋ neighbours each side on a seed-shuffled cycle (plus the opposite node when k is
 * odd); `random-regular`: a random k-regular graph (that ring, randomised by edge swaps).
 */
export type GraphKind = 'ring' | 'random-regular';

function invalid(field: string, message: string): FedlhsError {
  return new FedlhsError('INVALID_ARGUMENT', `${field}: ${message}`, { details: { field } });
}

/** Fisher–Yates with the stream's unbiased integers. */
function shuffle<T>(items: T[], stream: KeyStream): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = stream.uniformInt(i + 1);
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

/**
 * The circulant k-regular graph on positions 0..n−1: each linked to the ⌊k/2⌋ on either side,
 * and for odd k (n even) to the opposite position, n/2 away — further than ⌊k/2⌋ since k < n.
 */
function circulant(n: number, k: number): Set<number>[] {
  const adj = Array.from({ length: n }, () => new Set<number>());
  for (let i = 0; i < n; i++) {
    for (let d = 1; d <= Math.floor(k / 2); d++) {
      adj[i]!.add((i + d) % n);
      adj[(i + d) % n]!.add(i);
    }
    if (k % 2 === 1) adj[i]!.add((i + n / 2) % n);
  }
  return adj;
}

/**
 * Randomises a regular graph by double-edge swaps ({a,b},{c,d} → {a,d},{c,b}), which keep every
 * degree; 10 swaps per edge attempted, the standard Markov chain towards a uniform k-regular graph.
 */
function randomiseBySwaps(adj: Set<number>[], stream: KeyStream): void {
  const edges: [number, number][] = [];
  adj.forEach((ns, a) => ns.forEach((b) => a < b && edges.push([a, b])));
  if (edges.length < 2) return;
  for (let t = 0; t < 10 * edges.length; t++) {
    const i = stream.uniformInt(edges.length);
    const j = stream.uniformInt(edges.length);
    if (i === j) continue;
    const [a, b] = edges[i]!;
    const [c0, d0] = edges[j]!;
    const [c, d] = stream.uniformInt(2) === 0 ? [c0, d0] : [d0, c0];
    if (a === c || a === d || b === c || b === d || adj[a]!.has(d) || adj[c]!.has(b)) continue;
    adj[a]!.delete(b), adj[b]!.delete(a), adj[c]!.delete(d), adj[d]!.delete(c);
    adj[a]!.add(d), adj[d]!.add(a), adj[c]!.add(b), adj[b]!.add(c);
    edges[i] = [a, d];
    edges[j] = [c, b];
  }
}

/**
 * Each node's k neighbours: a symmetric graph without self-loops, the same for the same ids,
 * k, seed and kind. Refuses duplicate or empty ids, k < 1, k ≥ n (no k distinct others), and
 * an odd k with an odd n (no k-regular graph has an odd number of odd-degree nodes).
 */
export function neighbourhoods(nodeIds: readonly string[], k: number, seed: Uint8Array, kind: GraphKind): Map<string, string[]> {
  checkSeed(seed);
  if (kind !== 'ring' && kind !== 'random-regular') throw invalid('kind', `must be "ring" or "random-regular", got ${String(kind)}`);
  const ids = [...nodeIds].sort();
  ids.forEach((id, i) => {
    if (typeof id !== 'string' || id.length === 0) throw invalid('nodeIds', 'every id must be a non-empty string');
    if (i > 0 && ids[i - 1] === id) throw invalid('nodeIds', `id ${id} appears twice`);
  });
  const n = ids.length;
  if (!Number.isInteger(k) || k < 1) throw invalid('k', `must be an integer ≥ 1, got ${k}`);
  if (k >= n) throw invalid('k', `${k} neighbours need more than ${n} nodes`);
  if (k % 2 === 1 && n % 2 === 1) throw invalid('k', `no ${k}-regular graph on ${n} nodes: k and n are both odd`);
  const stream = new KeyStream(seed, `graph/${kind}`);
  const order = shuffle(ids.slice(), stream);
  const adj = circulant(n, k);
  if (kind === 'random-regular') randomiseBySwaps(adj, stream);
  return new Map(order.map((id, i) => [id, [...adj[i]!].map((j) => order[j]!).sort()]));
}

/**
 * The Shamir threshold for neighbourhoods of k: t = ⌈(k+1)/2⌉ = ⌊k/2⌋ + 1, the least strict
 * majority of the k neighbours holding a clinic's shares. Why a majority: an honest neighbour
 * reveals, for a given clinic, either its self-mask seed share (clinic survived) or its key
 * share (clinic dropped), never both; two disjoint sets of t > k/2 neighbours cannot exist, so a
 * coordinator that lies about who dropped cannot gather t shares of both and unmask one input
 * (Bonawitz et al. 2017 §4; Bell et al. 2020 §3). It tolerates k − t = ⌈k/2⌉ − 1 dropped
 * neighbours. Against corrupt clinics colluding with the coordinator, Bell et al. 2020 size t higher.
 */
export function thresholdFor(k: number): number {
  if (!Number.isInteger(k) || k < 1) throw invalid('k', `must be an integer ≥ 1, got ${k}`);
  return Math.floor(k / 2) + 1;
}
