/** Where the flow view draws each boundary: a connector from the producer
 * span's row down (or up) to the consumer span's row, and on the consumer's
 * row a bar from the moment the message was sent to the moment it was
 * received: the time it waited in the queue.
 *
 * A batch consumer can receive many messages at once (fan-in); their bars
 * share its row, so each bar gets a lane, and past `maxLanes` the rest are
 * drawn as one bar spanning them all, labelled with how many it holds. */

export interface Hop {
  /** Row of the producer span, or of the nearest shown ancestor. */
  fromRow: number;
  toRow: number;
  /** Pixels: when the message was sent and when it was received. */
  sentX: number;
  receivedX: number;
  /** Clock skew: the consumer's clock says it received before it was sent. */
  skew: boolean;
}

export interface PlacedHop<H extends Hop> {
  hops: H[];
  fromRow: number;
  toRow: number;
  /** The bar, left to right in pixels, whatever the clocks say. */
  x0: number;
  x1: number;
  lane: number;
  lanes: number;
  /** Several hops drawn as one bar. */
  merged: boolean;
}

export function placeHops<H extends Hop>(hops: H[], maxLanes = 3): PlacedHop<H>[] {
  const byRow = new Map<number, H[]>();
  for (const hop of hops) {
    const list = byRow.get(hop.toRow);
    if (list) list.push(hop);
    else byRow.set(hop.toRow, [hop]);
  }
  const out: PlacedHop<H>[] = [];
  for (const [toRow, list] of byRow) {
    const bars = list
      .map((h) => ({ hop: h, x0: Math.min(h.sentX, h.receivedX), x1: Math.max(h.sentX, h.receivedX) }))
      .sort((a, b) => a.x0 - b.x0 || a.x1 - b.x1);
    // Greedy interval colouring: the first lane whose last bar has ended.
    const laneEnds: number[] = [];
    const placed: { bar: (typeof bars)[number]; lane: number }[] = [];
    const overflow: typeof bars = [];
    for (const bar of bars) {
      let lane = laneEnds.findIndex((end) => end < bar.x0);
      if (lane === -1 && laneEnds.length < maxLanes) lane = laneEnds.length;
      if (lane === -1) {
        overflow.push(bar);
        continue;
      }
      laneEnds[lane] = bar.x1;
      placed.push({ bar, lane });
    }
    if (overflow.length) {
      // The last lane shows everything that did not fit, as one bar.
      const last = maxLanes - 1;
      const inLast = placed.filter((p) => p.lane === last);
      const merged = [...inLast.map((p) => p.bar), ...overflow];
      for (const p of inLast) placed.splice(placed.indexOf(p), 1);
      out.push({
        hops: merged.map((b) => b.hop),
        fromRow: Math.min(...merged.map((b) => b.hop.fromRow)),
        toRow,
        x0: Math.min(...merged.map((b) => b.x0)),
        x1: Math.max(...merged.map((b) => b.x1)),
        lane: last,
        lanes: maxLanes,
        merged: true,
      });
    }
    const lanes = overflow.length ? maxLanes : laneEnds.length;
    for (const { bar, lane } of placed) {
      out.push({ hops: [bar.hop], fromRow: bar.hop.fromRow, toRow, x0: bar.x0, x1: bar.x1, lane, lanes, merged: false });
    }
  }
  return out.sort((a, b) => a.toRow - b.toRow || a.lane - b.lane);
}

/** The SVG path of a connector: down from the producer's row at the moment
 * the message was sent, then across to where the consumer's bar begins. */
export function connectorPath(fromY: number, toY: number, sentX: number, barX: number): string {
  const midY = toY - Math.sign(toY - fromY || 1) * 6;
  return `M${sentX},${fromY} V${midY} Q${sentX},${toY} ${sentX + Math.sign(barX - sentX || 1) * 4},${toY} H${barX}`;
}
