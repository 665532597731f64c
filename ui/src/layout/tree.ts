/** The span tree of one trace (or of several, side by side) and the rows a
 * waterfall shows of it. */

export interface TreeSpan {
  span_id: string;
  parent_span_id: string | null;
  /** Offset of the start from the view's base, ns. */
  start: number;
  end: number;
}

export interface Node<S> {
  span: S;
  /** The span id, or for a repeated span id (a span exported twice) the
   * id with `#n`: what a row, a collapse or a selection names. */
  key: string;
  children: Node<S>[];
  /** Whether the span names a parent that is not among the spans. */
  missingParent: boolean;
  /** Spans under this one, at any depth. */
  descendants: number;
}

export interface Row<S> {
  node: Node<S>;
  depth: number;
}

/** Builds the tree: children under their parent in start order; spans
 * whose parent is absent (not yet arrived, or in another trace) become
 * roots so nothing is ever dropped from view. */
export function buildTree<S extends TreeSpan>(spans: S[]): Node<S>[] {
  const nodes = new Map<string, Node<S>>();
  for (const span of spans) {
    // A repeated span id (a retry exported twice) keeps both rows.
    const key = nodes.has(span.span_id) ? `${span.span_id}#${nodes.size}` : span.span_id;
    nodes.set(key, { span, key, children: [], missingParent: false, descendants: 0 });
  }
  const roots: Node<S>[] = [];
  for (const node of nodes.values()) {
    const parentId = node.span.parent_span_id;
    const parent = parentId ? nodes.get(parentId) : undefined;
    if (parent && parent !== node) {
      parent.children.push(node);
    } else {
      node.missingParent = !!parentId;
      roots.push(node);
    }
  }
  const byStart = (a: Node<S>, b: Node<S>) => a.span.start - b.span.start || a.span.end - b.span.end;
  roots.sort(byStart);
  // Iterative post-order: a 40,000-span chain must not overflow the stack.
  const order: Node<S>[] = [];
  const stack = [...roots];
  while (stack.length) {
    const node = stack.pop()!;
    order.push(node);
    node.children.sort(byStart);
    for (const child of node.children) stack.push(child);
  }
  for (let i = order.length - 1; i >= 0; i--) {
    const node = order[i];
    node.descendants = node.children.reduce((n, c) => n + 1 + c.descendants, 0);
  }
  return roots;
}

/** The rows shown: depth-first in start order, skipping what is under a
 * collapsed span. With a filter, only the spans that match are shown (not
 * dimmed), each at its own depth and in tree order; collapsing still
 * hides what is under a collapsed span. */
export function visibleRows<S extends TreeSpan>(
  roots: Node<S>[],
  collapsed: ReadonlySet<string>,
  filter?: (span: S) => boolean,
): Row<S>[] {
  const rows: Row<S>[] = [];
  const stack: Row<S>[] = [];
  for (let i = roots.length - 1; i >= 0; i--) stack.push({ node: roots[i], depth: 0 });
  while (stack.length) {
    const row = stack.pop()!;
    if (!filter || filter(row.node.span)) rows.push(row);
    if (collapsed.has(row.node.key)) continue;
    const { children } = row.node;
    for (let i = children.length - 1; i >= 0; i--) stack.push({ node: children[i], depth: row.depth + 1 });
  }
  return rows;
}

/** Every span id with children: what "collapse all" collapses. */
export function parents<S extends TreeSpan>(roots: Node<S>[]): string[] {
  const out: string[] = [];
  const stack = [...roots];
  while (stack.length) {
    const node = stack.pop()!;
    if (node.children.length) out.push(node.key);
    stack.push(...node.children);
  }
  return out;
}
