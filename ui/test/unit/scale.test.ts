import { describe, expect, it } from 'vitest';
import { busy, timeScale } from '../../src/layout/scale';

describe('gap collapsing', () => {
  it('merges overlapping intervals into busy stretches', () => {
    expect(busy([[5, 8], [0, 3], [2, 4], [8, 9]])).toEqual([[0, 4], [5, 9]]);
  });

  it('collapses a minutes-long queue wait so the work stays readable', () => {
    // 200 ms of producer work, 4 minutes in a queue, 300 ms of consumer work.
    const producer: [number, number] = [0, 200e6];
    const consumer: [number, number] = [240e9 + 200e6, 240e9 + 500e6];
    const s = timeScale([producer, consumer], [0, consumer[1]], 1000, { gapPx: 40 });
    expect(s.breaks.length).toBe(1);
    expect(s.breaks[0].end - s.breaks[0].start).toBe(240e9);
    expect(s.breaks[0].x1 - s.breaks[0].x0).toBeCloseTo(40);
    // The work gets all but the break: 200 ms and 300 ms in proportion.
    expect(s.x(200e6) - s.x(0)).toBeCloseTo(960 * (2 / 5));
    expect(s.x(consumer[1]) - s.x(consumer[0])).toBeCloseTo(960 * (3 / 5));
    expect(s.x(consumer[1])).toBeCloseTo(1000);
    // Monotonic everywhere, through the break.
    let last = -Infinity;
    for (let t = 0; t <= consumer[1]; t += 1e9) {
      expect(s.x(t)).toBeGreaterThanOrEqual(last);
      last = s.x(t);
    }
  });

  it('leaves short gaps alone', () => {
    const s = timeScale([[0, 50], [60, 100]], [0, 100], 100);
    expect(s.breaks).toEqual([]);
    expect(s.x(60)).toBeCloseTo(60);
  });

  it('labels a zoomed stretch from the trace start, not the zoom start', () => {
    const s = timeScale([], [2e9, 3e9], 1000, { linear: true, zero: 0 });
    const ticks = s.ticks(100);
    expect(ticks[0].at).toBe(2e9);
    expect(ticks[0].label).toBe('2 s');
    expect(s.x(ticks[0].at + s.zero)).toBeCloseTo(0);
  });

  it('stays linear when asked to', () => {
    const s = timeScale([[0, 1], [1000, 1001]], [0, 1001], 1001, { linear: true });
    expect(s.breaks).toEqual([]);
    expect(s.x(500)).toBeCloseTo(500);
  });

  it('puts ticks only where time is drawn to scale, never overlapping', () => {
    const s = timeScale([[0, 100e6], [60e9, 60e9 + 100e6]], [0, 60e9 + 100e6], 800);
    const ticks = s.ticks(60);
    expect(ticks.length).toBeGreaterThan(2);
    for (const t of ticks) {
      const inBreak = s.breaks.some((b) => t.at > b.start && t.at < b.end);
      expect(inBreak).toBe(false);
    }
    const xs = ticks.map((t) => s.x(t.at));
    for (let i = 1; i < xs.length; i++) expect(xs[i] - xs[i - 1]).toBeGreaterThanOrEqual(48);
  });
});
