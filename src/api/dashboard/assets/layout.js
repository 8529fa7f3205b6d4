// A deterministic layered layout, O(V + E) for layers and O(E + V log V) per ordering
// sweep: longest-path layers over a topological order (cycles broken by name order),
// then barycentre ordering within layers. The same graph always gets the same picture.

const SWEEPS = 4;

/** names: node names; edges: [[from, to]]. Returns Map name -> { layer, index }. */
export function layeredLayout(names, edges) {
  const sorted = [...names].sort();
  const succ = new Map(sorted.map(n => [n, []]));
  const pred = new Map(sorted.map(n => [n, []]));
  const indeg = new Map(sorted.map(n => [n, 0]));
  for (const [a, b] of edges) {
    if (a === b || !succ.has(a) || !succ.has(b)) continue;
    succ.get(a).push(b);
    pred.get(b).push(a);
    indeg.set(b, indeg.get(b) + 1);
  }
  const layer = assignLayers(sorted, succ, pred, indeg);
  const layers = [];
  for (const n of sorted) {
    const l = layer.get(n);
    (layers[l] ||= []).push(n);
  }
  const pos = new Map();
  layers.forEach(ns => ns.forEach((n, i) => pos.set(n, i)));
  for (let s = 0; s < SWEEPS; s++) {
    const down = s % 2 === 0;
    const seq = down ? layers.keys() : [...layers.keys()].reverse();
    for (const l of seq) reorder(layers[l], down ? pred : succ, pos);
  }
  const out = new Map();
  layers.forEach((ns, l) => ns.forEach((n, i) => out.set(n, { layer: l, index: i })));
  return { positions: out, layerSizes: layers.map(ns => ns.length) };
}

function assignLayers(sorted, succ, pred, indeg) {
  const layer = new Map();
  const queue = sorted.filter(n => indeg.get(n) === 0);
  let head = 0, next = 0;
  while (layer.size < sorted.length) {
    if (head === queue.length) {
      // A cycle: take the first unplaced node by name; its unplaced predecessors are back edges.
      while (layer.has(sorted[next])) next++;
      queue.push(sorted[next]);
    }
    const v = queue[head++];
    if (layer.has(v)) continue;
    let l = 0;
    for (const u of pred.get(v)) if (layer.has(u)) l = Math.max(l, layer.get(u) + 1);
    layer.set(v, l);
    for (const w of succ.get(v)) {
      indeg.set(w, indeg.get(w) - 1);
      if (indeg.get(w) === 0 && !layer.has(w)) queue.push(w);
    }
  }
  return layer;
}

function reorder(nodes, neighbours, pos) {
  if (!nodes || nodes.length < 2) return;
  const key = new Map();
  for (const n of nodes) {
    const ns = neighbours.get(n);
    let sum = 0;
    for (const m of ns) sum += pos.get(m);
    key.set(n, ns.length ? sum / ns.length : pos.get(n));
  }
  nodes.sort((a, b) => key.get(a) - key.get(b) || (a < b ? -1 : a > b ? 1 : 0));
  nodes.forEach((n, i) => pos.set(n, i));
}
