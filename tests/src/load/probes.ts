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

/** A gauge's value in Prometheus text, or undefined. */
export function promValue(text: string, name: string): number | undefined {
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.eE+-]+|NaN)$`, 'm').exec(text);
  return m === null ? undefined : Number(m[1]);
}

/** Sum of a counter over all its label sets in Prometheus text, or undefined when absent. */
export function promSum(text: string, name: string): number | undefined {
  const re = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.eE+-]+)$`, 'gm');
  // A labelled counter never incremented has only its HELP line: that is zero, not absent.
  let total: number | undefined = text.includes(`# HELP ${name} `) ? 0 : undefined;
  for (const m of text.matchAll(re)) total = (total ?? 0) + Number(m[1]);
  return total;
}
