/** A time → x scale that collapses long idle gaps.
 *
 * A flow is often a few hundred milliseconds of work, minutes of a
 * message waiting in a queue, then more work. Drawn linearly, the work
 * becomes slivers. Here every stretch of time in which no span runs and
 * which is longer than `minGapFraction` of the whole is drawn at a fixed,
 * small width with a visible break; the rest keeps its proportions. */

import { ticks, type Tick } from './time';

export interface Segment {
  /** Offsets in ns. */
  start: number;
  end: number;
  /** Pixels. */
  x0: number;
  x1: number;
  collapsed: boolean;
}

export interface Scale {
  segments: Segment[];
  /** The time ticks count from (the view's start, not the zoom's). */
  zero: number;
  width: number;
  x(t: number): number;
  /** The collapsed gaps, for drawing their breaks. */
  breaks: Segment[];
  ticks(minPx: number): Tick[];
}

export interface ScaleOptions {
  /** A gap is collapsed when it is longer than this fraction of the
   * whole range. */
  minGapFraction?: number;
  /** Pixels a collapsed gap takes. */
  gapPx?: number;
  /** Never collapse (a single trace's waterfall zoomed by the user). */
  linear?: boolean;
  /** Where tick labels count from; the range's start by default. */
  zero?: number;
}

/** Merges intervals into the stretches where something runs. */
export function busy(intervals: [number, number][]): [number, number][] {
  const sorted = intervals.filter(([a, b]) => Number.isFinite(a) && Number.isFinite(b)).map(([a, b]) => [a, Math.max(a, b)] as [number, number]);
  sorted.sort((p, q) => p[0] - q[0]);
  const out: [number, number][] = [];
  for (const [a, b] of sorted) {
    const last = out[out.length - 1];
    if (last && a <= last[1]) last[1] = Math.max(last[1], b);
    else out.push([a, b]);
  }
  return out;
}

export function timeScale(
  intervals: [number, number][],
  range: [number, number],
  width: number,
  options: ScaleOptions = {},
): Scale {
  const [from, to] = range;
  const total = Math.max(to - from, 1);
  const minGap = (options.minGapFraction ?? 0.15) * total;
  const gapPx = options.gapPx ?? 28;
  const pieces: { start: number; end: number; collapsed: boolean }[] = [];
  let cursor = from;
  if (!options.linear) {
    for (const [a, b] of busy(intervals)) {
      const start = Math.max(a, from);
      const end = Math.min(b, to);
      if (end < start) continue;
      if (start - cursor > minGap) {
        pieces.push({ start: cursor, end: start, collapsed: true });
        cursor = start;
      }
      cursor = Math.max(cursor, end);
    }
    if (to - cursor > minGap) {
      // Work ended long before the range does (a trailing wait).
      pieces.push({ start: cursor, end: to, collapsed: true });
    }
  }
  // Fill the uncollapsed stretches between the collapsed ones.
  const all: { start: number; end: number; collapsed: boolean }[] = [];
  let at = from;
  for (const p of pieces) {
    if (p.start > at) all.push({ start: at, end: p.start, collapsed: false });
    all.push(p);
    at = p.end;
  }
  if (to > at || all.length === 0) all.push({ start: at, end: Math.max(to, at), collapsed: false });
  const collapsedCount = all.filter((p) => p.collapsed).length;
  const linearPx = Math.max(width - collapsedCount * gapPx, width * 0.2);
  const linearNs = all.filter((p) => !p.collapsed).reduce((n, p) => n + (p.end - p.start), 0) || 1;
  const perNs = linearPx / linearNs;
  const gapWidth = collapsedCount ? (width - linearPx) / collapsedCount : 0;
  let x = 0;
  const segments: Segment[] = all.map((p) => {
    const w = p.collapsed ? gapWidth : (p.end - p.start) * perNs;
    const seg = { ...p, x0: x, x1: x + w };
    x += w;
    return seg;
  });
  const xOf = (t: number): number => {
    if (t <= from) return segments[0].x0 - (from - t) * perNs;
    for (const s of segments) {
      if (t <= s.end) {
        const len = s.end - s.start;
        return len > 0 ? s.x0 + ((t - s.start) / len) * (s.x1 - s.x0) : s.x0;
      }
    }
    const last = segments[segments.length - 1];
    return last.x1 + (t - last.end) * perNs;
  };
  const zero = options.zero ?? from;
  return {
    segments,
    zero,
    width,
    x: xOf,
    breaks: segments.filter((s) => s.collapsed),
    ticks(minPx: number) {
      const out: Tick[] = [];
      let lastX = -Infinity;
      for (const s of segments) {
        if (s.collapsed) continue;
        const px = s.x1 - s.x0;
        const n = Math.max(1, Math.floor(px / minPx));
        for (const tick of ticks(s.start - zero, s.end - zero, n)) {
          const tx = xOf(tick.at + zero);
          if (tx - lastX >= minPx * 0.8) {
            out.push(tick);
            lastX = tx;
          }
        }
      }
      return out;
    },
  };
}
