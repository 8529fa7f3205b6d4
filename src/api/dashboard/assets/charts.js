// Small SVG charts: a time series of candidate vs baseline, and quantile bars side by side.
import { svg, fmtMs, fmtPct } from './util.js';

const W = 300, H = 130, PAD_L = 46, PAD_B = 18, PAD_T = 16;

function scaleMax(values) {
  const m = Math.max(0, ...values.filter(v => typeof v === 'number' && isFinite(v)));
  return m > 0 ? m * 1.1 : 1;
}

/** Lines over time. series: [{ cls, label, points: [[t, v]] }]; fmt formats the axis. */
export function lineChart(title, series, fmt) {
  const all = series.flatMap(s => s.points);
  const t0 = Math.min(...all.map(p => p[0]));
  const t1 = Math.max(...all.map(p => p[0]));
  const vmax = scaleMax(all.map(p => p[1]));
  const x = t => PAD_L + (t1 > t0 ? ((t - t0) / (t1 - t0)) : 1) * (W - PAD_L - 6);
  const y = v => H - PAD_B - (v / vmax) * (H - PAD_B - PAD_T);
  const root = svg('svg', { class: 'chart', width: W, height: H, viewBox: `0 0 ${W} ${H}` },
    svg('text', { x: 4, y: 11 }, title),
    svg('line', { class: 'axis', x1: PAD_L, y1: H - PAD_B, x2: W, y2: H - PAD_B }),
    svg('text', { x: 2, y: PAD_T + 4 }, fmt(vmax)),
    svg('text', { x: 2, y: H - PAD_B }, fmt(0)));
  let lx = W - 120;
  for (const s of series) {
    const pts = s.points.filter(p => typeof p[1] === 'number' && isFinite(p[1]));
    if (pts.length) {
      const d = pts.map((p, i) => `${i ? 'L' : 'M'}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join('');
      root.appendChild(svg('path', { class: s.cls, d, fill: 'none', 'stroke-width': 1.6 }));
    }
    root.appendChild(svg('line', { class: s.cls, x1: lx, y1: 8, x2: lx + 12, y2: 8, 'stroke-width': 3 }));
    root.appendChild(svg('text', { x: lx + 15, y: 11 }, s.label));
    lx += 60;
  }
  if (t1 > t0) root.appendChild(svg('text', { x: PAD_L, y: H - 4 }, `last ${Math.round((t1 - t0) / 1000)} s`));
  return root;
}

/** Candidate and baseline latency quantiles as bars side by side. */
export function quantileBars(title, cand, base) {
  const qs = ['p50', 'p90', 'p99'];
  const vmax = scaleMax(qs.flatMap(q => [cand && cand[q], base && base[q]]));
  const root = svg('svg', { class: 'chart', width: W, height: H, viewBox: `0 0 ${W} ${H}` },
    svg('text', { x: 4, y: 11 }, title),
    svg('line', { class: 'axis', x1: PAD_L, y1: H - PAD_B, x2: W, y2: H - PAD_B }),
    svg('text', { x: 2, y: PAD_T + 4 }, fmtMs(vmax)));
  const group = (W - PAD_L) / qs.length;
  qs.forEach((q, i) => {
    const gx = PAD_L + i * group + 8;
    [[base, 'base'], [cand, 'cand']].forEach(([v, cls], j) => {
      const val = v && v[q];
      if (typeof val !== 'number' || !isFinite(val)) return;
      const h = (val / vmax) * (H - PAD_B - PAD_T);
      root.appendChild(svg('rect', { class: cls, x: gx + j * 30, y: H - PAD_B - h, width: 26, height: Math.max(h, 1) },
        svg('title', null, `${cls === 'cand' ? 'candidate' : 'baseline'} ${q}: ${fmtMs(val)}`)));
    });
    root.appendChild(svg('text', { x: gx + 18, y: H - 4 }, q));
  });
  return root;
}

export const fmtRate = v => fmtPct(v, 1);
