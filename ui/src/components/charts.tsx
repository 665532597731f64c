import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';

function theme() {
  const css = getComputedStyle(document.documentElement);
  const v = (name: string, fallback: string) => css.getPropertyValue(name).trim() || fallback;
  return { fg2: v('--fg2', '#666'), line: v('--line', '#ddd'), accent: v('--accent', '#2f6fdb'), wait: v('--wait', '#9a6700'), cold: v('--cold', '#1f7aa8'), error: v('--error', '#d1242f') };
}

export interface ChartSeries {
  label: string;
  values: (number | null)[];
  color: 'accent' | 'wait' | 'cold' | 'error';
  bars?: boolean;
}

/** A small uPlot chart: x values (seconds since the epoch when `time`)
 * and one or more series, bars or lines. */
export function Chart(props: { x: number[]; series: ChartSeries[]; time?: boolean; height?: number; xLabel?: (v: number) => string; yLabel?: (v: number) => string; testid?: string }) {
  const el = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const host = el.current!;
    const t = theme();
    const axis = { stroke: t.fg2, grid: { stroke: t.line, width: 1 }, ticks: { stroke: t.line } };
    const height = props.height ?? 160;
    const bars = uPlot.paths.bars!({ size: [0.8, 40] });
    const plot = new uPlot(
      {
        width: host.clientWidth || 600,
        height,
        legend: { show: props.series.length > 1 },
        scales: { x: { time: props.time ?? false, distr: props.time ? 1 : 2 }, y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] } },
        axes: [
          { ...axis, values: props.xLabel ? (_u, vals) => vals.map((v) => props.xLabel!(v)) : undefined },
          { ...axis, size: 56, values: props.yLabel ? (_u, vals) => vals.map((v) => props.yLabel!(v)) : undefined },
        ],
        series: [
          {},
          ...props.series.map((s) => ({
            label: s.label,
            stroke: t[s.color],
            fill: s.bars ? t[s.color] + '99' : undefined,
            paths: s.bars ? bars : undefined,
            points: { show: false },
          })),
        ],
      },
      [props.x, ...props.series.map((s) => s.values)],
      host,
    );
    const resize = new ResizeObserver(() => plot.setSize({ width: host.clientWidth, height }));
    resize.observe(host);
    return () => {
      resize.disconnect();
      plot.destroy();
    };
  }, [props.x, props.series]);
  return <div class="chart" ref={el} data-testid={props.testid} />;
}
