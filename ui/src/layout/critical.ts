/** The critical path: the spans (and waits) that, made shorter, would
 * make the whole shorter. Jaeger's rule, walked backwards from the end:
 * at each span, the child that finishes last before the cursor is on the
 * path, the parent's own time between its children is on the path too.
 *
 * Across a flow, an asynchronous consumer is a child of its producer span
 * that ends after it; here a subtree's end is its latest descendant's, so
 * the path follows the message into the consumer trace, and the time the
 * message waited is on the path as the producer's `wait`. */

export interface PathSpan {
  id: string;
  start: number;
  end: number;
  children: PathSpan[];
}

export interface PathSegment {
  id: string;
  start: number;
  end: number;
  /** Time past the span's own end, waiting on an asynchronous child. */
  wait: boolean;
}

export function criticalPath(roots: PathSpan[]): PathSegment[] {
  if (roots.length === 0) return [];
  const ends = new Map<PathSpan, number>();
  // Subtree ends, iteratively (post-order).
  const order: PathSpan[] = [];
  const stack = [...roots];
  while (stack.length) {
    const s = stack.pop()!;
    order.push(s);
    stack.push(...s.children);
  }
  for (let i = order.length - 1; i >= 0; i--) {
    const s = order[i];
    ends.set(s, s.children.reduce((m, c) => Math.max(m, ends.get(c)!), s.end));
  }
  // The root whose subtree ends last is where the path ends.
  const root = roots.reduce((a, b) => (ends.get(b)! > ends.get(a)! ? b : a));
  const out: PathSegment[] = [];
  const work: [PathSpan, number][] = [[root, ends.get(root)!]];
  while (work.length) {
    const [span, limit] = work.pop()!;
    let cursor = limit;
    const kids = [...span.children].sort((a, b) => ends.get(b)! - ends.get(a)!);
    for (const child of kids) {
      const childEnd = ends.get(child)!;
      // A child still running at the cursor ran beside what is already
      // on the path: it did not hold the parent up.
      if (childEnd > cursor) continue;
      if (childEnd < cursor) push(out, span, childEnd, cursor);
      work.push([child, childEnd]);
      cursor = Math.max(child.start, span.start);
      if (cursor <= span.start) break;
    }
    if (cursor > span.start) push(out, span, span.start, cursor);
  }
  return out.sort((a, b) => a.start - b.start || a.end - b.end);
}

function push(out: PathSegment[], span: PathSpan, start: number, end: number) {
  if (end <= start) return;
  if (start < span.end) out.push({ id: span.id, start, end: Math.min(end, span.end), wait: false });
  if (end > span.end) out.push({ id: span.id, start: Math.max(start, span.end), end, wait: true });
}
