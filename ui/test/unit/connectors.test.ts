import { describe, expect, it } from 'vitest';
import { connectorPath, placeHops, type Hop } from '../../src/layout/connectors';

const hop = (fromRow: number, toRow: number, sentX: number, receivedX: number, skew = false): Hop => ({ fromRow, toRow, sentX, receivedX, skew });

describe('connector placement', () => {
  it('gives fan-out hops to different consumers their own rows, one lane each', () => {
    const placed = placeHops([hop(1, 5, 10, 50), hop(1, 9, 10, 80)]);
    expect(placed.map((p) => [p.toRow, p.lane, p.lanes, p.x0, p.x1])).toEqual([
      [5, 0, 1, 10, 50],
      [9, 0, 1, 10, 80],
    ]);
  });

  it('stacks overlapping fan-in bars in lanes and merges what does not fit', () => {
    const hops = [hop(1, 7, 0, 100), hop(2, 7, 10, 100), hop(3, 7, 20, 100), hop(4, 7, 30, 100), hop(5, 7, 40, 100)];
    const placed = placeHops(hops, 3);
    expect(placed.length).toBe(3);
    expect(placed.map((p) => p.lane)).toEqual([0, 1, 2]);
    const merged = placed[2];
    expect(merged.merged).toBe(true);
    expect(merged.hops.length).toBe(3);
    expect([merged.x0, merged.x1]).toEqual([20, 100]);
    expect(merged.fromRow).toBe(3);
    // Every hop is drawn exactly once.
    expect(placed.reduce((n, p) => n + p.hops.length, 0)).toBe(5);
  });

  it('reuses a lane once the bar in it has ended', () => {
    const placed = placeHops([hop(1, 4, 0, 10), hop(2, 4, 20, 30)]);
    expect(placed.map((p) => p.lane)).toEqual([0, 0]);
  });

  it('draws a skewed hop left to right all the same', () => {
    const [p] = placeHops([hop(0, 3, 90, 60, true)]);
    expect([p.x0, p.x1]).toEqual([60, 90]);
    expect(p.hops[0].skew).toBe(true);
  });

  it('routes the connector from the producer row to the consumer bar', () => {
    expect(connectorPath(10, 50, 30, 80)).toBe('M30,10 V44 Q30,50 34,50 H80');
    expect(connectorPath(50, 10, 30, 20)).toBe('M30,50 V16 Q30,10 26,10 H20');
  });
});
