import { describe, expect, it } from 'vitest';
import { buildTree, parents, visibleRows, type TreeSpan } from '../../src/layout/tree';

const span = (id: string, parent: string | null, start: number, end = start + 10, name = id): TreeSpan & { name: string } => ({
  span_id: id,
  parent_span_id: parent,
  start,
  end,
  name,
});

describe('waterfall rows', () => {
  const spans = [
    span('c2', 'b', 30),
    span('a', null, 0, 100),
    span('b', 'a', 10, 60),
    span('c1', 'b', 20),
    span('d', 'a', 70),
    span('lost', 'not-here', 5),
  ];

  it('orders children by start and gives depths', () => {
    const rows = visibleRows(buildTree(spans), new Set());
    expect(rows.map((r) => [r.node.span.span_id, r.depth])).toEqual([
      ['a', 0],
      ['b', 1],
      ['c1', 2],
      ['c2', 2],
      ['d', 1],
      ['lost', 0],
    ]);
  });

  it('keeps a span whose parent is missing as a root, marked', () => {
    const roots = buildTree(spans);
    const lost = roots.find((r) => r.span.span_id === 'lost')!;
    expect(lost.missingParent).toBe(true);
    expect(roots.find((r) => r.span.span_id === 'a')!.descendants).toBe(4);
  });

  it('hides what is under a collapsed span', () => {
    const rows = visibleRows(buildTree(spans), new Set(['b']));
    expect(rows.map((r) => r.node.span.span_id)).toEqual(['a', 'b', 'd', 'lost']);
  });

  it('filters out, not dims: only matching spans, at their own depth', () => {
    const rows = visibleRows(buildTree(spans), new Set(), (s) => s.span_id.startsWith('c'));
    expect(rows.map((r) => [r.node.span.span_id, r.depth])).toEqual([
      ['c1', 2],
      ['c2', 2],
    ]);
  });

  it('keeps a span exported twice as two rows with their own keys', () => {
    const rows = visibleRows(buildTree([span('a', null, 0), span('a', null, 0)]), new Set());
    expect(rows.map((r) => r.node.key)).toEqual(['a', 'a#1']);
  });

  it('lists the spans collapse-all collapses', () => {
    expect(parents(buildTree(spans)).sort()).toEqual(['a', 'b']);
  });

  it('handles a chain of 40,000 spans without recursion', () => {
    const chain = Array.from({ length: 40_000 }, (_, i) => span(`s${i}`, i ? `s${i - 1}` : null, i));
    const rows = visibleRows(buildTree(chain), new Set());
    expect(rows.length).toBe(40_000);
    expect(rows[39_999].depth).toBe(39_999);
  });
});
