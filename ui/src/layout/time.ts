/** Nanosecond times arrive as decimal strings (as in OTLP/JSON) because
 * they do not fit a double; everything drawn is an offset from a base
 * time, which does. */
export function offsetNs(unixNano: string, base: bigint): number {
  return Number(BigInt(unixNano) - base);
}

/** The smallest of some decimal nanosecond times, as the base for offsets. */
export function minNs(times: Iterable<string>): bigint {
  let min: bigint | undefined;
  for (const t of times) {
    const v = BigInt(t);
    if (min === undefined || v < min) min = v;
  }
  return min ?? 0n;
}

const UNITS: [number, string][] = [
  [1e9, 's'],
  [1e6, 'ms'],
  [1e3, 'µs'],
];

/** A duration as people read it: three significant figures in the
 * largest unit that keeps it at or above one; minutes past a minute. */
export function formatDuration(ns: number): string {
  if (!Number.isFinite(ns)) return '–';
  const sign = ns < 0 ? '-' : '';
  const abs = Math.abs(ns);
  if (abs >= 60e9) {
    const totalS = Math.round(abs / 1e9);
    const h = Math.floor(totalS / 3600);
    const m = Math.floor((totalS % 3600) / 60);
    const s = totalS % 60;
    return sign + (h > 0 ? `${h}h ${m}m` : `${m}m ${s}s`);
  }
  for (const [scale, unit] of UNITS) {
    if (abs >= scale) return sign + trim(abs / scale) + ' ' + unit;
  }
  return sign + Math.round(abs) + ' ns';
}

function trim(v: number): string {
  const digits = v >= 100 ? 0 : v >= 10 ? 1 : 2;
  return v.toFixed(digits).replace(/\.0+$|(\.\d*?)0+$/, '$1');
}

/** The step between axis ticks: 1, 2 or 5 times a power of ten, the
 * smallest that keeps the ticks at most `maxTicks` over `span`. */
export function niceStep(span: number, maxTicks: number): number {
  if (span <= 0 || maxTicks < 1) return 1;
  const raw = span / maxTicks;
  const pow = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5, 10]) {
    if (m * pow >= raw) return m * pow;
  }
  return 10 * pow;
}

export interface Tick {
  /** Offset in ns from the axis' zero. */
  at: number;
  label: string;
}

/** Ticks over `[from, to]` (offsets in ns), at multiples of a nice step,
 * labelled as offsets from zero. */
export function ticks(from: number, to: number, maxTicks: number): Tick[] {
  if (!(to > from)) return [{ at: from, label: formatDuration(from) }];
  const step = niceStep(to - from, maxTicks);
  const out: Tick[] = [];
  const first = Math.ceil(from / step) * step;
  for (let at = first; at <= to + step * 1e-9; at += step) {
    // Accumulated float error would print 0.30000000000000004 ms.
    const clean = Math.round(at / step) * step;
    out.push({ at: clean, label: clean === 0 ? '0' : formatDuration(clean) });
  }
  return out;
}
