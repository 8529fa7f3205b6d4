// The deployments list, virtualised: only the rows in view (plus a margin) exist in the
// DOM, re-used as the list scrolls, so thousands of deployments cost a few dozen rows.
import { el, fmtAge, fmtCount, fmtPct, textIfChanged, setIfChanged, depKey } from './util.js';

const ROW_HEIGHT = 28;
const MARGIN_ROWS = 6;

export class DeploymentList {
  constructor(container, spacer, onSelect) {
    this.container = container;
    this.spacer = spacer;
    this.onSelect = onSelect;
    this.items = [];
    this.pool = [];
    this.selectedKey = null;
    this.ctx = null;
    container.addEventListener('scroll', () => this.render(), { passive: true });
    window.addEventListener('resize', () => this.render());
  }

  /** items: deployments already filtered and sorted; ctx: { now, share(d) }. */
  setItems(items, ctx) {
    this.items = items;
    this.ctx = ctx;
    this.spacer.style.height = `${items.length * ROW_HEIGHT}px`;
    this.render();
  }

  select(key) {
    this.selectedKey = key;
    this.render();
  }

  render() {
    const top = this.container.scrollTop;
    const height = this.container.clientHeight || 600;
    const first = Math.max(0, Math.floor(top / ROW_HEIGHT) - MARGIN_ROWS);
    const last = Math.min(this.items.length, Math.ceil((top + height) / ROW_HEIGHT) + MARGIN_ROWS);
    const needed = Math.max(0, last - first);
    while (this.pool.length < needed) this.pool.push(this.makeRow());
    for (let j = 0; j < this.pool.length; j++) {
      const row = this.pool[j];
      if (j < needed) {
        this.fill(row, this.items[first + j], first + j);
        row.style.display = '';
      } else {
        row.style.display = 'none';
      }
    }
  }

  makeRow() {
    const parts = {
      badge: el('span', { class: 'badge' }),
      svc: el('span', { class: 'c-svc' }),
      ver: el('span', { class: 'c-ver' }),
      bar: el('i'),
      shareText: el('span'),
      req: el('span', { class: 'c-req' }),
      age: el('span', { class: 'c-age' }),
    };
    const row = el('div', { class: 'row', role: 'button' },
      el('span', { class: 'c-verdict' }, parts.badge), parts.svc, parts.ver,
      el('span', { class: 'c-share' }, el('span', { class: 'share' }, parts.bar), parts.shareText),
      parts.req, parts.age);
    row.parts = parts;
    row.addEventListener('click', () => row.item && this.onSelect(row.item));
    this.container.appendChild(row);
    return row;
  }

  fill(row, d, index) {
    const p = row.parts;
    row.item = d;
    row.style.transform = `translateY(${index * ROW_HEIGHT}px)`;
    const key = depKey(d);
    setIfChanged(row, 'class', key === this.selectedKey ? 'row deployment selected' : 'row deployment');
    row.dataset.service = d.service;
    row.dataset.version = d.version;
    row.dataset.verdict = d.verdict;
    setIfChanged(p.badge, 'class', `badge ${d.verdict}`);
    textIfChanged(p.badge, d.verdict);
    textIfChanged(p.svc, d.service);
    p.svc.title = d.service;
    const ver = d.baseline_version == null ? d.version : `${d.version} ← ${d.baseline_version}`;
    textIfChanged(p.ver, ver);
    p.ver.title = ver;
    const share = this.ctx.share(d);
    p.bar.style.width = share == null ? '0' : `${Math.round(share * 100)}%`;
    textIfChanged(p.shareText, share == null ? '–' : fmtPct(share, 0));
    textIfChanged(p.req, fmtCount(d.requests));
    textIfChanged(p.age, fmtAge(this.ctx.now - Date.parse(d.started_at)));
  }
}
