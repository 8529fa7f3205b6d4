// Polling: fetches the JSON API, keeps a bounded client-side time series per deployment
// (candidate and baseline quantiles and error rate), since the API serves snapshots.
import { depKey, svcKey } from './util.js';

const MAX_POINTS = 300;
const MAX_SERIES = 5000;

async function getJson(path) {
  const r = await fetch(path, { cache: 'no-store', headers: { accept: 'application/json' } });
  if (!r.ok) throw new Error(`${path.split('?')[0]}: HTTP ${r.status}`);
  return r.json();
}

/** Fetches everything the page shows; each source fails on its own. */
export async function poll(env) {
  const q = env === null ? '' : `?environment=${encodeURIComponent(env)}`;
  const [deps, services, alerts, graph] = await Promise.allSettled([
    getJson('/api/v1/deployments'),
    getJson('/api/v1/services'),
    getJson('/api/v1/alerts'),
    env === null ? Promise.resolve(null) : getJson(`/api/v1/graph${q}`),
  ]);
  const errors = [deps, services, alerts, graph].filter(r => r.status === 'rejected').map(r => r.reason.message);
  const val = (r, field) => (r.status === 'fulfilled' && r.value ? (Array.isArray(r.value) ? r.value : r.value[field]) : null);
  return {
    deployments: val(deps, 'deployments'),
    services: val(services, 'services'),
    alerts: val(alerts, 'alerts'),
    graph: graph.status === 'fulfilled' ? graph.value : null,
    errors,
  };
}

/** Per (environment, service): versions by name and the total requests. */
export function indexServices(services) {
  const index = new Map();
  for (const s of services || []) {
    const versions = new Map();
    let total = 0;
    for (const v of s.versions || []) {
      versions.set(v.version, v);
      total += v.requests || 0;
    }
    index.set(svcKey(s.environment, s.service), { versions, total });
  }
  return index;
}

/** The candidate's share of its service's requests, or null when unknown. */
export function trafficShare(index, d) {
  const s = index.get(svcKey(d.environment, d.service));
  const v = s && s.versions.get(d.version);
  if (!v || !s.total) return null;
  return v.requests / s.total;
}

function point(v) {
  if (!v) return null;
  const l = v.latency_ms || {};
  return { p50: l.p50, p90: l.p90, p99: l.p99, err: v.requests ? (v.errors || 0) / v.requests : null, requests: v.requests };
}

/** Bounded history: one series per deployment, one point per poll. */
export class History {
  constructor() { this.series = new Map(); }

  record(now, deployments, index) {
    for (const d of deployments) {
      const s = index.get(svcKey(d.environment, d.service));
      const cand = point(s && s.versions.get(d.version));
      const base = point(s && d.baseline_version != null ? s.versions.get(d.baseline_version) : null);
      if (!cand && !base) continue;
      const key = depKey(d);
      let h = this.series.get(key);
      if (!h) {
        if (this.series.size >= MAX_SERIES) this.series.delete(this.series.keys().next().value);
        h = [];
      } else {
        this.series.delete(key); // re-insert: the map stays ordered by last update
      }
      h.push({ t: now, cand, base });
      if (h.length > MAX_POINTS) h.splice(0, h.length - MAX_POINTS);
      this.series.set(key, h);
    }
  }

  get(d) { return this.series.get(depKey(d)) || []; }
}

/** Alerts naming this deployment as culprit (labels environment, service, version). */
export function alertsFor(alerts, d) {
  return (alerts || []).filter(a => {
    const l = a.labels || {};
    return l.service === d.service && l.version === d.version && (l.environment ?? '') === d.environment;
  });
}
