// DOM and formatting helpers. Every string from telemetry reaches the page through
// createTextNode / textContent / setAttribute here: never through innerHTML.
const SVG_NS = 'http://www.w3.org/2000/svg';

function setAttrs(node, attrs) {
  if (!attrs) return;
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    node.setAttribute(k, String(v));
  }
}

function append(node, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(node, c);
    else if (c instanceof Node) node.appendChild(c);
    else node.appendChild(document.createTextNode(String(c)));
  }
}

/** An HTML element with attributes and children (strings become text nodes). */
export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  setAttrs(node, attrs);
  append(node, children);
  return node;
}

/** An SVG element with attributes and children (strings become text nodes). */
export function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  setAttrs(node, attrs);
  append(node, children);
  return node;
}

/** Replaces every child of `node` with `children`. */
export function replaceChildren(node, ...children) {
  while (node.firstChild) node.removeChild(node.firstChild);
  append(node, children);
}

/** Sets an attribute only when it changes (cheap updates of large SVGs). */
export function setIfChanged(node, name, value) {
  if (node.getAttribute(name) !== value) node.setAttribute(name, value);
}

/** Sets text only when it changes. */
export function textIfChanged(node, value) {
  if (node.textContent !== value) node.textContent = value;
}

export function fmtAge(ms) {
  if (!isFinite(ms) || ms < 0) return '–';
  const s = Math.floor(ms / 1000);
  if (s < 90) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 90) return `${m}m`;
  const h = Math.floor(m / 60);
  return h < 48 ? `${h}h ${m % 60}m` : `${Math.floor(h / 24)}d`;
}

export function fmtCount(n) {
  if (typeof n !== 'number' || !isFinite(n)) return '–';
  if (n < 1000) return String(n);
  if (n < 1e6) return `${(n / 1000).toFixed(n < 1e4 ? 1 : 0)}k`;
  return `${(n / 1e6).toFixed(1)}M`;
}

export function fmtMs(v) {
  if (typeof v !== 'number' || !isFinite(v)) return '–';
  if (v < 1) return `${(v * 1000).toFixed(0)} µs`;
  if (v < 1000) return `${v.toFixed(v < 10 ? 1 : 0)} ms`;
  return `${(v / 1000).toFixed(2)} s`;
}

export function fmtPct(v, digits = 1) {
  if (typeof v !== 'number' || !isFinite(v)) return '–';
  return `${(v * 100).toFixed(digits)} %`;
}

/** A value of a reason's evidence in its signal's unit. */
export function fmtSignal(signal, v) {
  return signal === 'error_rate' ? fmtPct(v, 2) : signal === 'latency' ? fmtMs(v) : String(v ?? '–');
}

/** Stable identity of a deployment. */
export function depKey(d) {
  return `${d.environment}\u0000${d.service}\u0000${d.version}`;
}

export function svcKey(env, service) {
  return `${env}\u0000${service}`;
}

export const VERDICT_RANK = { rollback: 0, inconclusive: 1, promote: 2 };
