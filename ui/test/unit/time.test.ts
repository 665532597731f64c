import { describe, expect, it } from 'vitest';
import { formatDuration, minNs, niceStep, offsetNs, ticks } from '../../src/layout/time';

describe('time', () => {
  it('keeps nanosecond precision past 2^53', () => {
    const base = minNs(['1765000000123456789', '1765000000123456790']);
    expect(base).toBe(1765000000123456789n);
    expect(offsetNs('1765000000123456790', base)).toBe(1);
    expect(offsetNs('1765000004123456789', base)).toBe(4e9);
  });

  it('formats durations in the unit people read', () => {
    expect(formatDuration(0)).toBe('0 ns');
    expect(formatDuration(850)).toBe('850 ns');
    expect(formatDuration(1_500)).toBe('1.5 µs');
    expect(formatDuration(12_345_678)).toBe('12.3 ms');
    expect(formatDuration(4_020_000_000)).toBe('4.02 s');
    expect(formatDuration(125e9)).toBe('2m 5s');
    expect(formatDuration(3725e9)).toBe('1h 2m');
    expect(formatDuration(-2e6)).toBe('-2 ms');
  });

  it('steps by 1, 2 or 5 times a power of ten', () => {
    expect(niceStep(1000, 10)).toBe(100);
    expect(niceStep(1000, 4)).toBe(500);
    expect(niceStep(7e9, 5)).toBe(2e9);
    expect(niceStep(3e6, 6)).toBe(5e5);
  });

  it('places ticks on whole steps within the range', () => {
    const t = ticks(0, 10e6, 5);
    expect(t.map((x) => x.at)).toEqual([0, 2e6, 4e6, 6e6, 8e6, 10e6]);
    expect(t.map((x) => x.label)).toEqual(['0', '2 ms', '4 ms', '6 ms', '8 ms', '10 ms']);
    const mid = ticks(1.05e9, 1.35e9, 3);
    expect(mid.map((x) => x.at)).toEqual([1.1e9, 1.2e9, 1.3e9]);
    expect(mid[0].label).toBe('1.1 s');
    expect(ticks(0.1e6, 0.3e6, 10).every((x) => !x.label.includes('000000'))).toBe(true);
  });
});
