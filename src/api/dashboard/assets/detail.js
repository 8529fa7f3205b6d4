// The deployment detail: candidate vs baseline over time, latency side by side, every
// reason with its evidence, exemplar trace ids, and the alerts raised with their delivery.
import { el, replaceChildren, fmtAge, fmtCount, fmtMs, fmtPct, fmtSignal } from './util.js';
import { lineChart, quantileBars, fmtRate } from './charts.js';

/** Renders the detail of deployment `d` into `root`. ctx: { now, history, share, alerts, current }. */
export function renderDetail(root, d, ctx) {
  if (!d) {
    replaceChildren(root, el('p', { class: 'muted' }, 'Select a deployment.'));
    return;
  }
  const share = ctx.share(d);
  replaceChildren(root,
    el('h2', null, el('span', { class: `badge ${d.verdict}`, id: 'detail-verdict' }, d.verdict), ' ',
      el('span', { id: 'detail-service' }, d.service), ' ', el('span', { class: 'muted' }, d.version)),
    el('dl', { class: 'kv' },
      el('dt', null, 'environment'), el('dd', null, d.environment === '' ? '(none)' : d.environment),
      el('dt', null, 'baseline'), el('dd', null, d.baseline_version ?? 'none'),
      el('dt', null, 'started'), el('dd', null, `${d.started_at} (${fmtAge(ctx.now - Date.parse(d.started_at))} ago)`),
      el('dt', null, 'requests'), el('dd', null, fmtCount(d.requests)),
      el('dt', null, 'traffic share'), el('dd', null, share == null ? '–' : fmtPct(share, 1))),
    charts(d, ctx),
    el('h3', null, 'Reasons'),
    reasons(d),
    el('h3', null, 'Alerts'),
    alerts(ctx.alerts));
}

function charts(d, ctx) {
  const h = ctx.history;
  const wrap = el('div', { class: 'charts' });
  const cur = ctx.current;
  wrap.appendChild(quantileBars('latency now: baseline vs candidate', cur.cand, cur.base));
  if (h.length >= 2) {
    const line = (pick, fmt, title) => lineChart(title, [
      { cls: 'base', label: 'baseline', points: h.map(p => [p.t, p.base && pick(p.base)]) },
      { cls: 'cand', label: 'candidate', points: h.map(p => [p.t, p.cand && pick(p.cand)]) },
    ], fmt);
    wrap.appendChild(line(p => p.p99, fmtMs, 'p99 latency'));
    wrap.appendChild(line(p => p.p50, fmtMs, 'p50 latency'));
    wrap.appendChild(line(p => p.err, fmtRate, 'error rate'));
  } else {
    wrap.appendChild(el('p', { class: 'muted' }, 'Collecting history: the charts over time fill in as the page polls.'));
  }
  return wrap;
}

function where(r) {
  if (r.caller != null || r.callee != null) return `${r.caller ?? '?'} → ${r.callee ?? '?'}`;
  return r.operation ?? '';
}

function reasons(d) {
  const list = d.reasons || [];
  if (!list.length) return el('p', { class: 'muted' }, 'No reasons given.');
  return el('table', { id: 'reasons' },
    el('thead', null, el('tr', null, ...['signal', 'scope', 'where', 'summary', 'baseline', 'candidate', 'effect', 'samples', 'test', 'confidence', 'exemplar traces'].map(h => el('th', null, h)))),
    el('tbody', null, ...list.map(r => reasonRow(r))));
}

function reasonRow(r) {
  const e = r.evidence || {};
  const q = e.quantile != null ? ` (p${Math.round(e.quantile * 100)})` : '';
  const traces = (e.exemplar_trace_ids || []).slice(0, 10).map(t => el('span', { class: 'trace' }, t));
  return el('tr', { class: r.regression ? 'reason regression' : 'reason' },
    el('td', null, r.signal), el('td', null, r.scope), el('td', null, where(r)),
    el('td', { class: 'summary' }, r.summary),
    el('td', null, fmtSignal(r.signal, e.baseline_value) + q),
    el('td', null, fmtSignal(r.signal, e.candidate_value) + q),
    el('td', null, typeof e.effect === 'number' ? e.effect.toPrecision(3) : '–'),
    el('td', null, `${fmtCount(e.baseline_samples)} / ${fmtCount(e.candidate_samples)}`),
    el('td', null, `${e.test ?? '–'} ${typeof e.statistic === 'number' ? e.statistic.toPrecision(3) : ''}`),
    el('td', null, typeof e.confidence === 'number' ? fmtPct(e.confidence, 1) : '–'),
    el('td', null, traces.length ? traces : '–'));
}

/** One line per sink: `sink: state [status] [error]` (shape of GET /api/v1/alerts). */
function deliveryText(delivery) {
  const list = Array.isArray(delivery) ? delivery : [];
  if (!list.length) return 'no sink';
  return list.map(x => {
    const status = x.delivered_status ? ` ${x.delivered_status}` : '';
    const err = x.last_error ? ` (${x.last_error})` : '';
    return `${x.sink ?? '?'}: ${x.state ?? '?'}${status}${err}`;
  }).join('; ');
}

function fmtTime(t) {
  if (typeof t === 'number') return new Date(t > 1e15 ? t / 1e6 : t).toISOString();
  return t ?? '–';
}

function alerts(list) {
  if (!list.length) return el('p', { class: 'muted' }, 'No alert names this deployment.');
  return el('table', { id: 'alerts' },
    el('thead', null, el('tr', null, ...['alert', 'status', 'severity', 'signal / scope', 'since', 'delivery'].map(h => el('th', null, h)))),
    el('tbody', null, ...list.map(a => {
      const l = a.labels || {};
      return el('tr', null, el('td', null, l.alertname ?? '–'), el('td', null, a.status ?? '–'),
        el('td', null, l.severity ?? '–'), el('td', null, `${l.signal ?? '–'} / ${l.scope ?? '–'}`),
        el('td', null, fmtTime(a.startsAt ?? a.starts_at)),
        el('td', null, deliveryText(a.delivery)));
    })));
}
