// The versioned service graph as SVG: one node per service (its versions listed), one edge
// per caller -> callee pair coloured by the health change between versions, the culprit
// deployments and their path of harm highlighted. Relayout only when the structure changes;
// otherwise classes and titles are updated in place.
import { svg, replaceChildren, setIfChanged, textIfChanged, fmtMs, fmtPct, fmtCount } from './util.js';
import { layeredLayout } from './layout.js';

const NODE_W = 176, NODE_H = 36, GAP_X = 110, GAP_Y = 14, PAD = 20;
const MIN_REQUESTS = 20;

const pairKey = (a, b) => `${a}\u0000${b}`;

/** Aggregates the API graph into one node per name and one edge per caller/callee pair. */
export function aggregate(graph) {
  const nodes = new Map();
  for (const n of graph.nodes || []) nodes.set(n.name, { name: n.name, kind: n.kind || 'service', versions: n.versions || [] });
  const edges = new Map();
  for (const e of graph.edges || []) {
    for (const end of [e.caller, e.callee]) if (!nodes.has(end)) nodes.set(end, { name: end, kind: 'service', versions: [] });
    const key = pairKey(e.caller, e.callee);
    let agg = edges.get(key);
    if (!agg) edges.set(key, (agg = { caller: e.caller, callee: e.callee, pairs: [], requests: 0, errors: 0 }));
    agg.pairs.push(e);
    agg.requests += e.requests || 0;
    agg.errors += e.errors || 0;
  }
  return { nodes, edges };
}

function p99(e) {
  const c = e.client_latency_ms, s = e.server_latency_ms;
  return (c && c.p99) ?? (s && s.p99) ?? null;
}

/** 'worse' when one version pair is clearly worse than another, 'errs' when errors but no change. */
export function classify(agg) {
  const sampled = agg.pairs.filter(p => (p.requests || 0) >= MIN_REQUESTS);
  if (sampled.length >= 2) {
    const rates = sampled.map(p => (p.errors || 0) / p.requests);
    const lo = Math.min(...rates), hi = Math.max(...rates);
    if (hi - lo >= 0.01 && hi >= 2 * lo) return 'worse';
    const lat = sampled.map(p99).filter(v => typeof v === 'number' && v > 0);
    if (lat.length >= 2) {
      const a = Math.min(...lat), b = Math.max(...lat);
      if (b >= 1.5 * a && b - a >= 5) return 'worse';
    }
  }
  return agg.errors > 0 ? 'errs' : 'ok';
}

function edgeTitle(agg) {
  const lines = agg.pairs.map(p => `${p.caller}@${p.caller_version || '?'} → ${p.callee}@${p.callee_version || '?'}: ` +
    `${fmtCount(p.requests)} req, ${fmtPct(p.requests ? (p.errors || 0) / p.requests : NaN, 2)} errors, p99 ${fmtMs(p99(p))}`);
  return lines.join('\n');
}

function nodeShape(kind) {
  const w = NODE_W, h = NODE_H;
  if (kind === 'database') {
    return svg('path', { class: 'shape', d: `M0,6 A${w / 2},6 0 0 1 ${w},6 V${h - 6} A${w / 2},6 0 0 1 0,${h - 6} Z M0,6 A${w / 2},6 0 0 0 ${w},6` });
  }
  if (kind === 'messaging') return svg('path', { class: 'shape', d: `M10,0 H${w - 10} L${w},${h / 2} L${w - 10},${h} H10 L0,${h / 2} Z` });
  if (kind === 'external') return svg('ellipse', { class: 'shape', cx: w / 2, cy: h / 2, rx: w / 2, ry: h / 2 });
  return svg('rect', { class: 'shape', width: w, height: h, rx: 6 });
}

function clip(s, n) { return s.length > n ? `${s.slice(0, n - 1)}…` : s; }

/** Edges to highlight: culprit services and the caller/callee pairs their reasons name. */
export function harmOf(deployments, agg) {
  const culprits = new Set();
  const harm = new Set();
  for (const d of deployments) {
    if (d.verdict !== 'rollback') continue;
    culprits.add(d.service);
    for (const r of d.reasons || []) {
      if (!r.regression) continue;
      let caller = r.caller, callee = r.callee;
      if (r.scope === 'outgoing') caller ??= d.service;
      if (r.scope === 'incoming') callee ??= d.service;
      if (caller == null || callee == null) continue;
      harm.add(pairKey(caller, callee));
      if (caller !== d.service) for (const k of pathBetween(agg, d.service, caller)) harm.add(k);
    }
  }
  return { culprits, harm };
}

/** Edge keys of a shortest path from -> to (breadth first), empty when none. */
function pathBetween(agg, from, to) {
  const out = new Map();
  for (const e of agg.edges.values()) (out.get(e.caller) || out.set(e.caller, []).get(e.caller)).push(e.callee);
  const prev = new Map([[from, null]]);
  const queue = [from];
  for (let i = 0; i < queue.length && !prev.has(to); i++) {
    for (const n of out.get(queue[i]) || []) if (!prev.has(n)) { prev.set(n, queue[i]); queue.push(n); }
  }
  if (!prev.has(to)) return [];
  const keys = [];
  for (let n = to; prev.get(n) != null; n = prev.get(n)) keys.push(pairKey(prev.get(n), n));
  return keys;
}

export class GraphView {
  constructor(container, onNodeClick) {
    this.container = container;
    this.onNodeClick = onNodeClick;
    this.signature = null;
    this.zoom = 1;
    this.nodeEls = new Map();
    this.edgeEls = new Map();
    this.stats = { lastLayoutMs: 0, lastUpdateMs: 0 };
  }

  setZoom(z) {
    this.zoom = Math.min(3, Math.max(0.2, z));
    if (this.root) this.applySize();
  }

  applySize() {
    this.root.setAttribute('width', String(Math.round(this.width * this.zoom)));
    this.root.setAttribute('height', String(Math.round(this.height * this.zoom)));
  }

  /** graph: the API graph; deployments: of this environment; filter: service substring. */
  update(graph, deployments, filter) {
    const t0 = performance.now();
    const agg = aggregate(graph);
    const signature = [...agg.nodes.keys()].join('\u0001') + '\u0002' + [...agg.edges.keys()].join('\u0001');
    if (signature !== this.signature) {
      this.build(agg);
      this.signature = signature;
      this.stats.lastLayoutMs = performance.now() - t0;
    }
    this.paint(agg, harmOf(deployments, agg), filter);
    this.stats.lastUpdateMs = performance.now() - t0;
    return agg;
  }

  build(agg) {
    const names = [...agg.nodes.keys()];
    const { positions, layerSizes } = layeredLayout(names, [...agg.edges.values()].map(e => [e.caller, e.callee]));
    const xy = n => { const p = positions.get(n); return [PAD + p.layer * (NODE_W + GAP_X), PAD + p.index * (NODE_H + GAP_Y)]; };
    this.width = PAD * 2 + layerSizes.length * (NODE_W + GAP_X) - GAP_X;
    this.height = PAD * 2 + Math.max(1, ...layerSizes) * (NODE_H + GAP_Y);
    const edgesG = svg('g', { class: 'edges' });
    const nodesG = svg('g', { class: 'nodes' });
    this.edgeEls = new Map();
    this.nodeEls = new Map();
    for (const [key, e] of agg.edges) {
      const [x1, y1] = xy(e.caller), [x2, y2] = xy(e.callee);
      const sx = x1 + NODE_W, sy = y1 + NODE_H / 2, tx = x2, ty = y2 + NODE_H / 2;
      const bend = Math.max(40, Math.abs(tx - sx) / 2);
      const title = svg('title');
      const path = svg('path', { class: 'edge', d: `M${sx},${sy} C${sx + bend},${sy} ${tx - bend},${ty} ${tx},${ty}`, 'data-caller': e.caller, 'data-callee': e.callee }, title);
      path.titleEl = title;
      edgesG.appendChild(path);
      this.edgeEls.set(key, path);
    }
    for (const [name, n] of agg.nodes) {
      const [x, y] = xy(name);
      const ver = svg('text', { class: 'ver', x: 8, y: 29 });
      const g = svg('g', { class: `node ${n.kind}`, transform: `translate(${x},${y})`, 'data-name': name, 'data-kind': n.kind },
        svg('title', null, name), nodeShape(n.kind), svg('text', { class: 'name', x: 8, y: 14 }, clip(name, 26)), ver);
      g.verEl = ver;
      g.addEventListener('click', () => this.onNodeClick(name));
      nodesG.appendChild(g);
      this.nodeEls.set(name, g);
    }
    this.root = svg('svg', { viewBox: `0 0 ${this.width} ${this.height}`, id: 'graph-svg' }, edgesG, nodesG);
    this.applySize();
    replaceChildren(this.container, this.root);
  }

  paint(agg, { culprits, harm }, filter) {
    for (const [key, e] of agg.edges) {
      const path = this.edgeEls.get(key);
      setIfChanged(path, 'class', `edge ${classify(e)}${harm.has(key) ? ' harm' : ''}`);
      textIfChanged(path.titleEl, edgeTitle(e));
    }
    for (const [name, n] of agg.nodes) {
      const g = this.nodeEls.get(name);
      const match = filter && name.toLowerCase().includes(filter);
      setIfChanged(g, 'class', `node ${n.kind}${culprits.has(name) ? ' culprit' : ''}${match ? ' match' : ''}`);
      textIfChanged(g.verEl, clip(n.versions.join(', '), 30));
    }
  }

  clear(message) {
    this.signature = null;
    this.root = null;
    replaceChildren(this.container, message);
  }
}
