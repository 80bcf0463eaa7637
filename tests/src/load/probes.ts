import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

let ticks: number | undefined;
function clockTicks(): number {
  if (ticks === undefined) {
    try {
      ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticks = 100;
    }
  }
  return ticks;
}

/** CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name, which may contain spaces: state is field 3, utime 14, stime 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / clockTicks();
}

/** Peak and current resident set size of a process in MiB (VmHWM, VmRSS). */
export function rssMiB(pid: number): { peak: number; current: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0);
  return { peak: kib('VmHWM') / 1024, current: kib('VmRSS') / 1024 };
}

/** p-th percentile (0-100) of a list of numbers, nearest rank; NaN when empty. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** A loop that runs `probe` every `periodMs` (one at a time, never overlapping) until stopped. */
export function sampleEvery(periodMs: number, probe: () => Promise<void>): { stop: () => Promise<void> } {
  let running = true;
  const done = (async () => {
    while (running) {
      const t0 = performance.now();
      try {
        await probe();
      } catch {
        // A failed sample is just a missing sample; the counts say how many succeeded.
      }
      const wait = periodMs - (performance.now() - t0);
      if (wait > 0 && running) await new Promise((r) => setTimeout(r, wait));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await done;
    },
  };
}

/** Times one HTTP GET (body read included), in ms; throws on a non-2xx answer. */
export async function timedGet(url: string, token: string): Promise<number> {
  const t0 = performance.now();
  const res = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
  await res.arrayBuffer();
  if (!res.ok) throw new Error(`GET ${url}: ${res.status}`);
  return performance.now() - t0;
}

/** A gauge's value in Prometheus text (the first series whose labels include `labels`), or undefined. */
export function promValue(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const m of text.matchAll(new RegExp(`^${name}(?:\\{([^}]*)\\})? ([0-9.eE+-]+|NaN)$`, 'gm'))) {
    const have = (m[1] ?? '').split(',');
    if (wanted.every((w) => have.includes(w))) return Number(m[2]);
  }
  return undefined;
}

/** Sum of a counter over all its label sets in Prometheus text, or undefined when absent. */
export function promSum(text: string, name: string): number | undefined {
  const re = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.eE+-]+)$`, 'gm');
  // A labelled counter never incremented has only its HELP line: that is zero, not absent.
  let total: number | undefined = text.includes(`# HELP ${name} `) ? 0 : undefined;
  for (const m of text.matchAll(re)) total = (total ?? 0) + Number(m[1]);
  return total;
}

/** One histogram (cumulative buckets by upper bound, sum, count) for one label set, from Prometheus text. */
export interface PromHistogram {
  buckets: { le: number; count: number }[];
  sum: number;
  count: number;
}

/**
 * A histogram's series whose labels include every `labels` pair (e.g. `{ of: 'units' }`), or
 * undefined when the text has no such histogram.
 */
export function promHistogram(text: string, name: string, labels: Record<string, string> = {}): PromHistogram | undefined {
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  const matches = (labelText: string): boolean => wanted.every((w) => labelText.split(',').includes(w));
  const buckets: { le: number; count: number }[] = [];
  let sum: number | undefined;
  let count: number | undefined;
  const re = new RegExp(`^${name}_(bucket|sum|count)(?:\\{([^}]*)\\})? ([0-9.eE+-]+|NaN|\\+Inf)$`, 'gm');
  for (const m of text.matchAll(re)) {
    const labelText = m[2] ?? '';
    if (!matches(labelText)) continue;
    const value = Number(m[3]);
    if (m[1] === 'bucket') {
      const le = /(?:^|,)le="([^"]+)"/.exec(labelText)?.[1];
      if (le !== undefined) buckets.push({ le: le === '+Inf' ? Number.POSITIVE_INFINITY : Number(le), count: value });
    } else if (m[1] === 'sum') sum = value;
    else count = value;
  }
  if (count === undefined || sum === undefined) return undefined;
  return { buckets: buckets.sort((a, b) => a.le - b.le), sum, count };
}

/** What a histogram gained between two scrapes (b − a); a when the first scrape is missing. */
export function histogramDelta(a: PromHistogram | undefined, b: PromHistogram | undefined): PromHistogram | undefined {
  if (b === undefined) return undefined;
  if (a === undefined) return b;
  return {
    buckets: b.buckets.map((x) => ({ le: x.le, count: x.count - (a.buckets.find((y) => y.le === x.le)?.count ?? 0) })),
    sum: b.sum - a.sum,
    count: b.count - a.count,
  };
}

/**
 * The q-quantile (0-1) of a histogram as the upper bound of the bucket it falls in (what the
 * buckets can say, no interpolation); NaN when empty, +Infinity past the last finite bucket.
 */
export function histogramQuantile(h: PromHistogram | undefined, q: number): number {
  if (h === undefined || h.count <= 0) return Number.NaN;
  const rank = q * h.count;
  for (const b of h.buckets) if (b.count >= rank) return b.le;
  return Number.POSITIVE_INFINITY;
}

/** Soft and hard limits on open files of a process (from /proc/<pid>/limits); Infinity when unlimited. */
export function openFileLimits(pid: number | 'self' = 'self'): { soft: number; hard: number } {
  const text = readFileSync(`/proc/${pid}/limits`, 'utf8');
  const m = /^Max open files\s+(\S+)\s+(\S+)/m.exec(text);
  const n = (s: string | undefined): number => (s === undefined || s === 'unlimited' ? Number.POSITIVE_INFINITY : Number(s));
  return { soft: n(m?.[1]), hard: n(m?.[2]) };
}

/**
 * Makes sure a child process may open `needed` files: raises its soft limit (up to the hard limit,
 * with prlimit(1)) when it is lower; throws, naming the fix, when the hard limit is lower.
 */
export function ensureOpenFiles(pid: number, needed: number, what: string): void {
  const { soft, hard } = openFileLimits(pid);
  if (soft >= needed) return;
  if (hard < needed) {
    throw new Error(`${what} (pid ${pid}) may open ${hard} files at most (hard limit), the load needs ${needed}: raise it (ulimit -Hn ${needed}, or LimitNOFILE= / limits.conf) and run again`);
  }
  execFileSync('prlimit', [`--pid=${pid}`, `--nofile=${needed}:${hard}`]);
}

/** Pins a process and all its threads to the given CPUs (taskset -a -p -c). */
export function pinToCpus(pid: number, cpus: string): void {
  execFileSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore' });
}
