import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import { formatDuration } from '../layout/time';

export interface Point {
  /** Seconds since the epoch. */
  t: number;
  durationNs: number;
  id: string;
  error: boolean;
}

/** Duration over time, one point a trace (errors in red); a click on a
 * point opens its trace. */
export function Scatter({ points, onPick }: { points: Point[]; onPick: (id: string) => void }) {
  const el = useRef<HTMLDivElement>(null);
  const pick = useRef(onPick);
  pick.current = onPick;
  useEffect(() => {
    const host = el.current!;
    const sorted = [...points].sort((a, b) => a.t - b.t);
    const xs = sorted.map((p) => p.t);
    const ok = sorted.map((p) => (p.error ? null : p.durationNs / 1e6));
    const bad = sorted.map((p) => (p.error ? p.durationNs / 1e6 : null));
    const css = getComputedStyle(document.documentElement);
    const accent = css.getPropertyValue('--accent').trim() || '#2f6fdb';
    const error = css.getPropertyValue('--error').trim() || '#d1242f';
    const fg2 = css.getPropertyValue('--fg2').trim() || '#666';
    const line = css.getPropertyValue('--line').trim() || '#ddd';
    const axis = { stroke: fg2, grid: { stroke: line, width: 1 }, ticks: { stroke: line } };
    const series = (stroke: string, label: string): uPlot.Series => ({
      label,
      stroke,
      fill: stroke,
      paths: () => null,
      points: { show: true, size: 7, stroke, fill: stroke },
    });
    const plot = new uPlot(
      {
        width: host.clientWidth || 800,
        height: 170,
        legend: { show: false },
        cursor: { points: { size: 10 } },
        scales: { y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] } },
        axes: [axis, { ...axis, size: 60, values: (_u, vals) => vals.map((v) => formatDuration(v * 1e6)) }],
        series: [{}, series(accent, 'duration'), series(error, 'error')],
      },
      [xs, ok, bad],
      host,
    );
    const onClick = () => {
      const i = plot.cursor.idx;
      if (i != null && sorted[i]) pick.current(sorted[i].id);
    };
    plot.over.addEventListener('click', onClick);
    plot.over.style.cursor = 'pointer';
    const resize = new ResizeObserver(() => plot.setSize({ width: host.clientWidth, height: 170 }));
    resize.observe(host);
    return () => {
      resize.disconnect();
      plot.destroy();
    };
  }, [points]);
  return <div class="scatter" ref={el} data-testid="scatter" />;
}
