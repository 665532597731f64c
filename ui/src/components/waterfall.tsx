/** The waterfall shared by the trace and flow views: a virtualized list of
 * rows (only what is on screen is in the DOM, so 40,000 spans scroll as
 * smoothly as 40), a time axis, bars with cold-start init segments and
 * the critical path, and in a flow the hops between traces. */
import { Virtualizer, elementScroll, observeElementOffset, observeElementRect } from '@tanstack/virtual-core';
import type { JSX } from 'preact';
import { useEffect, useLayoutEffect, useMemo, useReducer, useRef, useState } from 'preact/hooks';
import type { Boundary, Span } from '../api';
import { placeHops, connectorPath, type Hop } from '../layout/connectors';
import type { PathSegment } from '../layout/critical';
import { serviceColor } from '../layout/colors';
import type { Scale } from '../layout/scale';
import { formatDuration } from '../layout/time';
import { param, setParams } from '../router';

export type WfRow =
  | {
      kind: 'span';
      id: string;
      span: Span;
      start: number;
      end: number;
      depth: number;
      descendants: number;
      collapsed: boolean;
      missingParent: boolean;
    }
  | {
      kind: 'header';
      id: string;
      traceId: string;
      title: JSX.Element | string;
      start: number;
      end: number;
      collapsed: boolean;
    };

export interface HopView {
  boundary: Boundary;
  /** Offsets in ns. */
  sent: number;
  received: number;
}

interface Props {
  rows: WfRow[];
  scale: (width: number) => Scale;
  onToggle: (id: string) => void;
  critical?: Map<string, PathSegment[]>;
  hops?: HopView[];
  /** Where a span id's row is drawn when it is hidden (its trace header). */
  fallbackRow?: (spanId: string, traceId: string) => string | undefined;
  minimap?: { rows: { start: number; end: number; service: string }[]; range: [number, number]; zoom: [number, number]; onZoom: (z: [number, number] | null) => void };
  nameWidth?: number;
  onHop?: (b: Boundary) => void;
  /** A marker for a span's row (an unconsumed message, say), with its
   * explanation. */
  mark?: (span: Span) => { text: string; title: string } | undefined;
}

const SPAN_H = 24;
const HEADER_H = 28;

function rowHeight(r: WfRow): number {
  return r.kind === 'header' ? HEADER_H : SPAN_H;
}

export function Waterfall(props: Props) {
  const { rows, nameWidth = 360 } = props;
  // The selected span is the URL's, in every view that draws a waterfall.
  const selected = param('span') || null;
  const onSelect = (id: string | null) => setParams({ span: id });
  const scrollRef = useRef<HTMLDivElement>(null);
  const [width, setWidth] = useState(800);
  const [, rerender] = useReducer((n: number) => n + 1, 0);

  const tops = useMemo(() => {
    const out = new Float64Array(rows.length + 1);
    for (let i = 0; i < rows.length; i++) out[i + 1] = out[i] + rowHeight(rows[i]);
    return out;
  }, [rows]);
  const index = useMemo(() => new Map(rows.map((r, i) => [r.id, i])), [rows]);

  const virtualizer = useMemo(
    () =>
      new Virtualizer<HTMLDivElement, Element>({
        count: rows.length,
        getScrollElement: () => scrollRef.current,
        estimateSize: (i) => rowHeight(rows[i]),
        overscan: 12,
        // A new row list (a collapse, a filter) keeps the scroll position.
        initialOffset: () => scrollRef.current?.scrollTop ?? 0,
        getItemKey: (i) => rows[i].id,
        scrollToFn: elementScroll,
        observeElementRect,
        observeElementOffset,
        onChange: () => rerender(0),
      }),
    [rows],
  );
  useLayoutEffect(() => {
    const cleanup = virtualizer._didMount();
    virtualizer._willUpdate();
    return cleanup;
  }, [virtualizer]);
  useLayoutEffect(() => {
    virtualizer._willUpdate();
  });

  useEffect(() => {
    const el = scrollRef.current!;
    const observe = new ResizeObserver(() => setWidth(Math.max(100, el.clientWidth - nameWidth - 12)));
    observe.observe(el);
    return () => observe.disconnect();
  }, [nameWidth]);

  const scale = useMemo(() => props.scale(width), [props.scale, width]);
  const ticks = useMemo(() => scale.ticks(90), [scale]);

  // Keep the selected row on screen when the selection changes (j/k, a
  // link), not when the rows do (a collapse keeps the view where it is).
  const current = useRef(virtualizer);
  current.current = virtualizer;
  useEffect(() => {
    if (!selected) return;
    const i = index.get(selected);
    if (i !== undefined) current.current.scrollToIndex(i, { align: 'auto' });
  }, [selected]);

  const items = virtualizer.getVirtualItems();
  const firstRow = items.length ? items[0].index : 0;
  const lastRow = items.length ? items[items.length - 1].index : -1;

  const placed = useMemo(() => {
    if (!props.hops?.length) return [];
    const rowOf = (spanId: string, traceId: string) => index.get(spanId) ?? index.get(props.fallbackRow?.(spanId, traceId) ?? '');
    const hops: (Hop & { view: HopView })[] = [];
    for (const h of props.hops) {
      const b = h.boundary;
      const fromRow = rowOf(b.producer_span_id, b.producer_trace_id);
      const toRow = rowOf(b.consumer_span_id, b.consumer_trace_id);
      if (fromRow === undefined || toRow === undefined) continue;
      hops.push({ fromRow, toRow, sentX: scale.x(h.sent), receivedX: scale.x(h.received), skew: b.clock_skew, view: h });
    }
    return placeHops(hops, 3);
  }, [props.hops, index, scale]);

  const keyDown = (e: KeyboardEvent) => {
    if ((e.target as HTMLElement).tagName === 'INPUT') return;
    const spanRows = rows;
    const at = selected ? (index.get(selected) ?? -1) : -1;
    const move = (d: number) => {
      let i = at;
      do i += d;
      while (i >= 0 && i < spanRows.length && spanRows[i].kind !== 'span');
      if (i >= 0 && i < spanRows.length) onSelect(spanRows[i].id);
    };
    if (e.key === 'j' || e.key === 'ArrowDown') {
      move(1);
      e.preventDefault();
    } else if (e.key === 'k' || e.key === 'ArrowUp') {
      move(-1);
      e.preventDefault();
    } else if (e.key === 'Enter' && selected) {
      props.onToggle(selected);
      e.preventDefault();
    } else if (e.key === 'Escape') {
      onSelect(null);
    }
  };

  const total = tops[rows.length];
  return (
    <div class="wf-main">
      {props.minimap && <Minimap {...props.minimap} />}
      <div class="wf-axis">
        <div class="names" style={{ width: nameWidth }}>
          {rows.length} rows
        </div>
        <div class="ticks">
          {ticks.map((t) => (
            <span class="tick" style={{ left: scale.x(t.at + scale.zero) }}>
              {t.label}
            </span>
          ))}
          {scale.breaks.map((b) => (
            <span class="break-label" style={{ left: (b.x0 + b.x1) / 2 }} title="Idle time drawn shorter">
              ⋯ {formatDuration(b.end - b.start)}
            </span>
          ))}
        </div>
      </div>
      <div class="wf-scroll" ref={scrollRef} tabIndex={0} onKeyDown={keyDown} data-testid="waterfall">
        <div class="wf-rows" style={{ height: total }}>
          <div style={{ position: 'absolute', left: nameWidth, right: 0, top: 0, height: total, pointerEvents: 'none' }}>
            {ticks.map((t) => (
              <div class="gridline" style={{ left: scale.x(t.at + scale.zero) }} />
            ))}
            {scale.breaks.map((b) => (
              <div class="break" style={{ left: b.x0, width: b.x1 - b.x0 }} />
            ))}
          </div>
          {items.map((item) => {
            const row = rows[item.index];
            return row.kind === 'header' ? (
              <div class="trace-header" style={{ top: tops[item.index] }} onClick={() => props.onToggle(row.id)} data-testid="trace-header" data-trace-id={row.traceId}>
                <span>{row.collapsed ? '▸' : '▾'}</span>
                {row.title}
              </div>
            ) : (
              <SpanRow key={row.id} row={row} top={tops[item.index]} scale={scale} nameWidth={nameWidth} selected={selected === row.id} mark={props.mark?.(row.span)} critical={props.critical?.get(row.id)} onSelect={onSelect} onToggle={props.onToggle} />
            );
          })}
          {placed.length > 0 && (
            <Hops placed={placed} tops={tops} firstRow={firstRow} lastRow={lastRow} nameWidth={nameWidth} onHop={props.onHop} />
          )}
        </div>
      </div>
    </div>
  );
}

function SpanRow(props: {
  row: Extract<WfRow, { kind: 'span' }>;
  top: number;
  scale: Scale;
  nameWidth: number;
  selected: boolean;
  mark?: { text: string; title: string };
  critical?: PathSegment[];
  onSelect: (id: string) => void;
  onToggle: (id: string) => void;
}) {
  const { row, scale } = props;
  const s = row.span;
  const x0 = scale.x(row.start);
  const x1 = Math.max(scale.x(row.end), x0 + 1);
  const error = s.status.code === 'ERROR';
  const init = s.cold_start && s.init_duration_ns ? Math.max(2, x0 - scale.x(row.start - s.init_duration_ns)) : 0;
  const labelRight = x1 + 4 < scale.width - 70;
  return (
    <div
      class={`row${props.selected ? ' selected' : ''}`}
      style={{ top: props.top }}
      onClick={() => props.onSelect(row.id)}
      data-testid="span-row"
      data-span-id={row.id}
      data-service={s.service_name}
    >
      <div class="name" style={{ width: props.nameWidth, paddingLeft: 4 + row.depth * 14 }}>
        {row.descendants > 0 ? (
          <button
            class="toggle"
            aria-label={row.collapsed ? 'expand' : 'collapse'}
            onClick={(e) => {
              e.stopPropagation();
              props.onToggle(row.id);
            }}
          >
            {row.collapsed ? '▸' : '▾'}
          </button>
        ) : (
          <span class="toggle" />
        )}
        <span class="swatch" style={{ background: serviceColor(s.service_name) }} />
        <span class="svc">{s.service_name}</span>
        <span class="op">{s.name}</span>
        {row.collapsed && <span class="kids">+{row.descendants}</span>}
        {s.cold_start && <span class="badge badge-cold" title={s.cold_start_type ?? 'cold start'}>cold</span>}
        {error && <span class="badge badge-error">error</span>}
        {row.missingParent && <span class="badge badge-orphan" title="The parent span has not arrived">no parent</span>}
        {props.mark && (
          <span class="badge badge-orphan" title={props.mark.title} data-testid="row-mark">
            {props.mark.text}
          </span>
        )}
      </div>
      <div class="lane">
        <div class={`bar${error ? ' error' : ''}`} style={{ left: x0, width: x1 - x0, background: serviceColor(s.service_name) }}>
          {init > 0 && <div class="init" style={{ left: -init, width: init }} title={`init ${formatDuration(s.init_duration_ns!)}`} />}
        </div>
        {props.critical &&
          critSegments(props.critical, scale).map((c) => (
            <div class={`crit${c.wait ? ' wait' : ''}`} style={{ left: c.x0, width: Math.max(1, c.x1 - c.x0) }} title={c.wait ? 'critical path: waiting on a message' : 'critical path'} />
          ))}
        <span class="bar-label" style={labelRight ? { left: x1 + 4 } : { right: scale.width - x0 + 4 }}>
          {formatDuration(s.duration_ns)}
          {init > 0 ? ` + init ${formatDuration(s.init_duration_ns!)}` : ''}
        </span>
      </div>
    </div>
  );
}

/** A span's critical-path segments in pixels, those less than a pixel
 * apart drawn as one: a root with thousands of children has as many
 * segments, which would be as many elements on its row. */
function critSegments(segments: PathSegment[], scale: Scale): { x0: number; x1: number; wait: boolean }[] {
  const out: { x0: number; x1: number; wait: boolean }[] = [];
  for (const c of segments) {
    const x0 = scale.x(c.start);
    const x1 = scale.x(c.end);
    const last = out[out.length - 1];
    if (last && last.wait === c.wait && x0 - last.x1 < 1) last.x1 = Math.max(last.x1, x1);
    else out.push({ x0, x1, wait: c.wait });
  }
  return out;
}

function Hops(props: {
  placed: ReturnType<typeof placeHops<Hop & { view: HopView }>>;
  tops: Float64Array;
  firstRow: number;
  lastRow: number;
  nameWidth: number;
  onHop?: (b: Boundary) => void;
}) {
  const { tops } = props;
  const visible = props.placed.filter((p) => Math.max(p.fromRow, p.toRow) >= props.firstRow - 2 && Math.min(p.fromRow, p.toRow) <= props.lastRow + 2);
  // Bars sit in the lower part of the consumer's row, one thin lane each;
  // the row's label sits above them.
  const barY = (row: number, lane: number, lanes: number) => tops[row] + (lanes > 1 ? 13 + lane * 3.5 : 15);
  const barH = (lanes: number) => (lanes > 1 ? 3 : 5);
  const rows = new Map<number, typeof visible>();
  for (const p of visible) {
    const list = rows.get(p.toRow);
    if (list) list.push(p);
    else rows.set(p.toRow, [p]);
  }
  const describe = (b: Boundary) =>
    [
      `${b.producer_service} → ${b.consumer_service}`,
      `waited ${formatDuration(b.latency_ns)}${b.flagged ? ' (flagged: over the edge threshold)' : ''}`,
      `system ${b.system ?? '–'}, destination ${b.destination ?? '–'}`,
      `stitched by ${b.stitched_by}${b.correlation_key ? ` (${b.correlation_key}=${b.correlation_value})` : ''}`,
      b.clock_skew ? 'clock skew: the consumer received before the producer sent, by their clocks' : '',
      b.deliveries > 1 ? `delivered ${b.deliveries} times` : '',
    ]
      .filter(Boolean)
      .join('\n');
  return (
    <div style={{ position: 'absolute', left: props.nameWidth, top: 0, right: 0, height: 0 }}>
      <svg class="connectors" width="1" height="1">
        {visible.map((p) =>
          p.hops.map((h) => {
            const fromY = tops[h.fromRow] + SPAN_H / 2;
            const y = barY(p.toRow, p.lane, p.lanes) + barH(p.lanes) / 2;
            return (
              <g>
                <circle cx={h.sentX} cy={fromY} r={2.5} />
                <path class={h.view.boundary.flagged ? 'flagged' : undefined} d={connectorPath(fromY, y, h.sentX, Math.min(h.sentX, h.receivedX))} />
              </g>
            );
          }),
        )}
      </svg>
      {visible.map((p) => (
        <div
          class={`hop-bar${p.hops.some((h) => h.view.boundary.flagged) ? ' flagged' : ''}${p.hops.some((h) => h.skew) ? ' skew' : ''}`}
          style={{ left: p.x0, width: Math.max(3, p.x1 - p.x0), top: barY(p.toRow, p.lane, p.lanes), height: barH(p.lanes) }}
          title={p.hops.map((h) => describe(h.view.boundary)).join('\n\n')}
        />
      ))}
      {[...rows.entries()].map(([row, placed]) => {
        const hops = placed.flatMap((p) => p.hops);
        const first = hops[0].view.boundary;
        const flagged = hops.some((h) => h.view.boundary.flagged);
        const skew = hops.some((h) => h.skew);
        const where = [first.system, first.destination].filter(Boolean).join(' ') || first.kind;
        const latencies = hops.map((h) => h.view.boundary.latency_ns);
        // One message: where, how long, how it was stitched. A batch
        // (fan-in): how many, the range of their waits.
        const label =
          hops.length === 1
            ? `${where} · ${formatDuration(first.latency_ns)} · ${first.stitched_by}`
            : `${hops.length} messages · ${formatDuration(Math.min(...latencies))}–${formatDuration(Math.max(...latencies))} · ${where}`;
        return (
          <span
            class={`hop-label${flagged ? ' flagged' : ''}`}
            style={{ left: Math.max(0, Math.min(...placed.map((p) => p.x0))), top: tops[row] }}
            title={hops.map((h) => describe(h.view.boundary)).join('\n\n')}
            data-testid="hop-label"
            data-hops={hops.length}
            onClick={() => props.onHop?.(first)}
          >
            {label}
            {skew ? ' · clock skew' : ''}
          </span>
        );
      })}
    </div>
  );
}

function Minimap(props: { rows: { start: number; end: number; service: string }[]; range: [number, number]; zoom: [number, number]; onZoom: (z: [number, number] | null) => void }) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const host = useRef<HTMLDivElement>(null);
  const [drag, setDrag] = useState<[number, number] | null>(null);
  // A drag released outside the minimap ends there too.
  useEffect(() => {
    if (!drag) return;
    const end = () => setDrag(null);
    window.addEventListener('mouseup', end);
    return () => window.removeEventListener('mouseup', end);
  }, [drag !== null]);
  useEffect(() => {
    const c = canvas.current!;
    const draw = () => {
      const w = c.clientWidth;
      const h = c.clientHeight;
      c.width = w * devicePixelRatio;
      c.height = h * devicePixelRatio;
      const ctx = c.getContext('2d')!;
      ctx.scale(devicePixelRatio, devicePixelRatio);
      const [from, to] = props.range;
      const span = Math.max(1, to - from);
      const n = props.rows.length;
      const rowH = Math.max(0.5, Math.min(4, h / Math.max(n, 1)));
      props.rows.forEach((r, i) => {
        ctx.fillStyle = serviceColor(r.service);
        const x = ((r.start - from) / span) * w;
        const x2 = ((r.end - from) / span) * w;
        ctx.fillRect(x, (i / Math.max(n, 1)) * h, Math.max(1, x2 - x), rowH);
      });
    };
    draw();
    const observe = new ResizeObserver(draw);
    observe.observe(c);
    return () => observe.disconnect();
  }, [props.rows, props.range]);
  const frac = (e: MouseEvent) => {
    const r = host.current!.getBoundingClientRect();
    return Math.min(1, Math.max(0, (e.clientX - r.left) / r.width));
  };
  const [z0, z1] = drag ? [Math.min(...drag), Math.max(...drag)] : props.zoom;
  const zoomed = z0 > 0 || z1 < 1;
  return (
    <div
      class="minimap"
      ref={host}
      title="Drag to zoom, double-click to reset"
      data-testid="minimap"
      onMouseDown={(e) => setDrag([frac(e), frac(e)])}
      onMouseMove={(e) => drag && setDrag([drag[0], frac(e)])}
      onMouseUp={(e) => {
        if (!drag) return;
        const a = Math.min(drag[0], frac(e));
        const b = Math.max(drag[0], frac(e));
        setDrag(null);
        if (b - a > 0.005) props.onZoom([a, b]);
      }}
      onDblClick={() => props.onZoom(null)}
    >
      <canvas ref={canvas} />
      {(zoomed || drag) && (
        <>
          <div class="shade" style={{ left: 0, width: `${z0 * 100}%` }} />
          <div class="window" style={{ left: `${z0 * 100}%`, width: `${(z1 - z0) * 100}%` }} />
          <div class="shade" style={{ left: `${z1 * 100}%`, right: 0 }} />
        </>
      )}
    </div>
  );
}
