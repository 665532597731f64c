import type { Attributes, Boundary, Span } from '../api';
import { formatDuration, offsetNs } from '../layout/time';
import { setParams } from '../router';
import { Badge, Link } from './common';

function AttrTable({ attrs, testid }: { attrs: Attributes; testid?: string }) {
  const entries = Object.entries(attrs);
  if (!entries.length) return <div class="muted">none</div>;
  return (
    <table data-testid={testid}>
      <tbody>
        {entries.map(([k, v]) => (
          <tr>
            <td>{k}</td>
            <td class="mono">{v ?? <span class="muted">null</span>}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export interface SpanRef {
  trace_id: string;
  span_id: string;
}

/** Everything about one span, with its links both ways: the spans it
 * links to, the spans that link to it, and the messages it sent or
 * received across a boundary. Each opens the other span in place when it
 * is in view, else its trace. */
export function SpanDetail(props: {
  span: Span;
  base: bigint;
  /** Who links to whom (see `linkedFrom`). */
  links: Map<string, Span[]>;
  boundaries: Boundary[];
  open: (ref: SpanRef) => void;
  inView: (ref: SpanRef) => boolean;
}) {
  const s = props.span;
  const linkedFrom = props.links.get(`${s.trace_id}:${s.span_id}`) ?? [];
  const ref = (r: SpanRef, label: string) => (
    <a
      href={`/traces/${r.trace_id}?span=${r.span_id}`}
      data-testid="span-link"
      onClick={(e) => {
        if (e.button !== 0 || e.metaKey || e.ctrlKey) return;
        e.preventDefault();
        props.open(r);
      }}
    >
      {label}
      {!props.inView(r) && <span class="muted"> (trace {r.trace_id.slice(0, 8)})</span>}
    </a>
  );
  const sent = props.boundaries.filter((b) => b.producer_span_id === s.span_id && b.producer_trace_id === s.trace_id);
  const received = props.boundaries.filter((b) => b.consumer_span_id === s.span_id && b.consumer_trace_id === s.trace_id);
  return (
    <aside class="detail" data-testid="span-detail">
      <button class="close" onClick={() => setParams({ span: null })} aria-label="close">
        ✕
      </button>
      <h2>
        {s.service_name}: {s.name}
      </h2>
      <div>
        {s.cold_start && <Badge kind="cold">cold start {s.cold_start_type ?? ''}</Badge>}
        {s.status.code === 'ERROR' && <Badge kind="error">error</Badge>}
        <Badge kind="platform">{s.platform}</Badge>
        <Badge kind="muted">{s.kind}</Badge>
      </div>
      <table>
        <tbody>
          <tr><td>duration</td><td>{formatDuration(s.duration_ns)}</td></tr>
          <tr><td>start</td><td>+{formatDuration(offsetNs(s.start_unix_nano, props.base))}</td></tr>
          {s.init_duration_ns != null && <tr><td>init</td><td>{formatDuration(s.init_duration_ns)}</td></tr>}
          <tr><td>status</td><td>{s.status.code}{s.status.message ? `: ${s.status.message}` : ''}</td></tr>
          <tr><td>span id</td><td class="mono">{s.span_id}</td></tr>
          <tr><td>trace id</td><td class="mono"><Link href={`/traces/${s.trace_id}`}>{s.trace_id}</Link></td></tr>
          {s.parent_span_id && <tr><td>parent</td><td class="mono">{ref({ trace_id: s.trace_id, span_id: s.parent_span_id }, s.parent_span_id)}</td></tr>}
          {s.instance && <tr><td>instance</td><td class="mono">{s.instance}</td></tr>}
          {s.flow_id && <tr><td>flow</td><td class="mono"><Link href={`/flows/${s.trace_id}`}>{s.flow_id}</Link></td></tr>}
        </tbody>
      </table>
      {(sent.length > 0 || received.length > 0) && (
        <>
          <div class="section-title">Messages</div>
          <ul data-testid="span-messages">
            {sent.map((b) => (
              <li>
                sent to {ref({ trace_id: b.consumer_trace_id, span_id: b.consumer_span_id }, b.consumer_service)} via {b.system ?? '?'} {b.destination ?? ''}, waited{' '}
                {formatDuration(b.latency_ns)} {b.flagged && <Badge kind="flagged">flagged</Badge>} {b.clock_skew && <Badge kind="skew">skew</Badge>} <span class="muted">({b.stitched_by})</span>
              </li>
            ))}
            {received.map((b) => (
              <li>
                received from {ref({ trace_id: b.producer_trace_id, span_id: b.producer_span_id }, b.producer_service)} via {b.system ?? '?'} {b.destination ?? ''}, waited{' '}
                {formatDuration(b.latency_ns)} {b.flagged && <Badge kind="flagged">flagged</Badge>} {b.clock_skew && <Badge kind="skew">skew</Badge>} <span class="muted">({b.stitched_by})</span>
              </li>
            ))}
          </ul>
        </>
      )}
      {s.links.length > 0 && (
        <>
          <div class="section-title">Links to</div>
          <ul data-testid="links-to">
            {s.links.map((l) => (
              <li>{ref(l, `${l.span_id.slice(0, 8)}…`)}</li>
            ))}
          </ul>
        </>
      )}
      {linkedFrom.length > 0 && (
        <>
          <div class="section-title">Linked from</div>
          <ul data-testid="linked-from">
            {linkedFrom.map((l) => (
              <li>{ref(l, `${l.service_name}: ${l.name}`)}</li>
            ))}
          </ul>
        </>
      )}
      <div class="section-title">Attributes</div>
      <AttrTable attrs={s.attributes} testid="attributes" />
      <div class="section-title">Resource</div>
      <AttrTable attrs={s.resource} />
      {s.events.length > 0 && (
        <>
          <div class="section-title">Events</div>
          {s.events.map((e) => (
            <div class="card" style={{ marginBottom: 6 }}>
              <b>{e.name}</b> <span class="muted">+{formatDuration(offsetNs(e.time_unix_nano, props.base))}</span>
              <AttrTable attrs={e.attributes} />
            </div>
          ))}
        </>
      )}
    </aside>
  );
}
