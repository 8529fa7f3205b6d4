// The dashboard's glue: polls the API, filters and sorts deployments, and renders the
// list, the selected deployment's detail and the service graph of one environment.
// Short polling (not SSE): the API serves snapshots that change once per judge tick, so a
// poll every 2 s costs four small GETs and needs no server-side subscriber state.
import { el, replaceChildren, depKey, VERDICT_RANK } from './util.js';
import { poll, fetchGraph, indexServices, trafficShare, History, alertsFor } from './data.js';
import { DeploymentList } from './list.js';
import { renderDetail } from './detail.js';
import { GraphView } from './graph.js';

const params = new URLSearchParams(location.search);
const POLL_MS = Math.min(60000, Math.max(200, Number(params.get('poll')) || 2000));

const $ = id => document.getElementById(id);
const state = {
  deployments: [], services: [], alerts: [], graph: null, index: new Map(),
  env: null, filter: '', onlyBad: false, selected: null, history: new History(),
};
const stats = { polls: 0, renders: 0, firstRenderMs: null, lastRenderMs: 0, lastListMs: 0, lastGraphMs: 0, lastLayoutMs: 0, errors: [] };
window.verdictDashboard = stats;

const list = new DeploymentList($('list'), $('list-spacer'), d => select(d));
const graph = new GraphView($('graph'), name => {
  const best = visible().find(d => d.service === name);
  if (best) select(best);
});

function select(d) {
  state.selected = depKey(d);
  list.select(state.selected);
  renderSelected();
}

function environments() {
  const envs = new Set();
  for (const d of state.deployments) envs.add(d.environment);
  for (const s of state.services) envs.add(s.environment);
  return [...envs].sort();
}

function syncEnvSelect() {
  const envs = environments();
  if (state.env === null || !envs.includes(state.env)) {
    const bad = state.deployments.find(d => d.verdict === 'rollback');
    state.env = bad ? bad.environment : envs.length ? envs[0] : null;
  }
  const sel = $('env');
  const current = [...sel.options].map(o => o.value).join('\u0000');
  if (current !== envs.join('\u0000')) {
    replaceChildren(sel, ...envs.map(e => el('option', { value: e }, e === '' ? '(none)' : e)));
  }
  if (state.env !== null) sel.value = state.env;
}

function visible() {
  const f = state.filter;
  const out = state.deployments.filter(d => d.environment === state.env &&
    (!f || d.service.toLowerCase().includes(f)) && (!state.onlyBad || d.verdict !== 'promote'));
  out.sort((a, b) => (VERDICT_RANK[a.verdict] ?? 3) - (VERDICT_RANK[b.verdict] ?? 3) ||
    Date.parse(b.started_at) - Date.parse(a.started_at) || (a.service < b.service ? -1 : a.service > b.service ? 1 : 0));
  return out;
}

function renderSelected() {
  const d = state.deployments.find(x => depKey(x) === state.selected) || null;
  const s = d && state.index.get(`${d.environment}\u0000${d.service}`);
  const cur = { cand: s && s.versions.get(d.version)?.latency_ms, base: s && d.baseline_version != null ? s.versions.get(d.baseline_version)?.latency_ms : null };
  renderDetail($('detail'), d, {
    now: Date.now(), share: x => trafficShare(state.index, x), current: cur,
    history: d ? state.history.get(d) : [], alerts: d ? alertsFor(state.alerts, d) : [],
  });
}

function render() {
  const t0 = performance.now();
  syncEnvSelect();
  const items = visible();
  list.setItems(items, { now: Date.now(), share: d => trafficShare(state.index, d) });
  const t1 = performance.now();
  if (state.selected === null && items.length) state.selected = depKey(items[0]);
  list.select(state.selected);
  renderSelected();
  const t2 = performance.now();
  if (state.graph) graph.update(state.graph, state.deployments.filter(d => d.environment === state.env), state.filter);
  else graph.clear(el('p', { class: 'muted' }, 'No graph yet.'));
  const t3 = performance.now();
  const bad = items.filter(d => d.verdict === 'rollback').length;
  $('counts').textContent = `${items.length} deployments, ${bad} rollback`;
  $('graph-info').textContent = state.graph ? graphInfo(state.graph) : '';
  Object.assign(stats, { renders: stats.renders + 1, lastListMs: t1 - t0, lastGraphMs: t3 - t2, lastLayoutMs: graph.stats.lastLayoutMs, lastRenderMs: t3 - t0 });
  if (stats.firstRenderMs === null && state.deployments.length) {
    stats.firstRenderMs = performance.now();
    stats.firstRender = { renderMs: stats.lastRenderMs, listMs: stats.lastListMs, graphMs: stats.lastGraphMs, layoutMs: stats.lastLayoutMs, fetchMs: stats.lastFetchMs };
    performance.mark('verdict-first-render');
  }
}

async function tick() {
  const t0 = performance.now();
  const got = await poll(state.env);
  stats.polls++;
  stats.lastFetchMs = performance.now() - t0;
  if (got.deployments) state.deployments = got.deployments;
  if (got.services) { state.services = got.services; state.index = indexServices(got.services); }
  if (got.alerts) state.alerts = got.alerts;
  const envBefore = state.env;
  syncEnvSelect();
  // The graph is per environment: the first poll may not have known which one to ask for.
  state.graph = envBefore === state.env ? got.graph : state.env === null ? null : await fetchGraph(state.env);
  state.history.record(Date.now(), state.deployments, state.index);
  stats.errors = got.errors;
  const status = $('status');
  status.textContent = got.errors.length ? `partial data: ${got.errors.join(', ')}` : `live · updated ${new Date().toLocaleTimeString()}`;
  status.className = got.errors.length ? 'status err' : 'status';
  render();
}

async function loop() {
  try { await tick(); } catch (e) {
    $('status').textContent = `update failed: ${e.message}`;
    $('status').className = 'status err';
  }
  setTimeout(loop, POLL_MS);
}

$('env').addEventListener('change', e => { state.env = e.target.value; state.selected = null; state.graph = null; graph.clear(el('p', { class: 'muted' }, 'Loading…')); tick(); });
$('filter').addEventListener('input', e => { state.filter = e.target.value.trim().toLowerCase(); render(); });
$('only-bad').addEventListener('change', e => { state.onlyBad = e.target.checked; render(); });
$('zoom-in').addEventListener('click', () => graph.setZoom(graph.zoom * 1.25));
$('zoom-out').addEventListener('click', () => graph.setZoom(graph.zoom / 1.25));
loop();

// Node and edge counts; while the analyzer keeps only some traces for the graph (it fell
// behind its input), say so: the edges' counts are then estimates.
function graphInfo(g) {
  const counts = `${(g.nodes || []).length} nodes, ${(g.edges || []).length} edges`;
  const rate = typeof g.sample_rate === 'number' ? g.sample_rate : 1;
  return rate < 1 ? `${counts} · sampled under load: 1 trace in ${Math.round(1 / rate)}, counts estimated` : counts;
}
