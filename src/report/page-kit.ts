/**
 * What vigil's own pages share (`/`, `/probes/:id`, `/status`): one stylesheet, allowed by the CSP
 * through its hash, and the small renderings every page uses. No page carries a script.
 */
import { escapeHtml as esc, pageCsp } from './format.js';
import type { RenderedPage } from './types.js';

// The CSP allows exactly this text by hash, so any edit here changes the policy with it.
// Under 40rem a table marked `stack` becomes one card per row, each cell under its own label
// (`data-label`), so a phone shows whole words instead of a crushed grid. Only URLs may break
// anywhere (`.url`); other text breaks between words, or inside one only when it cannot fit alone.
export const PAGE_STYLE = `
:root{color-scheme:light dark;--bg:#fff;--fg:#1d2125;--mute:#5f6b76;--line:#d9dee3;--up:#1f883d;--down:#cf222e;--warn:#9a6700;--none:#c8ced4;--card:#f6f8fa}
@media (prefers-color-scheme:dark){:root{--bg:#0f1317;--fg:#e3e7eb;--mute:#98a3ad;--line:#2b333b;--up:#3fb950;--down:#ff7b72;--warn:#d29922;--none:#39424b;--card:#161b22}}
*{box-sizing:border-box}
body{margin:0 auto;max-width:72rem;padding:1rem 1.25rem 3rem;background:var(--bg);color:var(--fg);font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif}
header{display:flex;flex-wrap:wrap;align-items:baseline;gap:.25rem 1rem;border-bottom:1px solid var(--line);padding-bottom:.5rem}
h1{font-size:1.4rem;margin:0;overflow-wrap:break-word}
h2{font-size:1rem;margin:1.5rem 0 .5rem}
h3{font-size:.95rem;margin:1rem 0 .4rem}
a{color:inherit}
.mute,time{color:var(--mute)}
.summary{font-size:1.05rem;margin:.75rem 0}
.summary b{font-weight:600}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;vertical-align:top;padding:.3rem .5rem;border-bottom:1px solid var(--line)}
th{font-weight:600;color:var(--mute);font-size:.85rem}
td{overflow-wrap:break-word}
td.msg{max-width:28rem}
.url{overflow-wrap:anywhere}
.pill{display:inline-block;min-width:4.5em;text-align:center;border-radius:1em;padding:0 .5em;color:#fff;font-weight:600;font-size:.8rem}
.pill.up{background:#1a7f37}.pill.down{background:#b42318}.pill.unknown{background:#57606a}
.run{font-size:.75rem;color:var(--mute)}
.lbl{display:inline-block;font-size:.75rem;color:var(--mute);border:1px solid var(--line);border-radius:3px;padding:0 .3em;margin:.1em .2em 0 0}
.code{font:600 .8rem ui-monospace,monospace;color:var(--down)}
.sev{font-weight:600}.sev.critical{color:var(--down)}.sev.warning{color:var(--warn)}
.up-t{color:var(--up)}.down-t{color:var(--down)}
.flag{display:inline-block;font-weight:600;font-size:.8rem;color:var(--down);border:1px solid currentColor;border-radius:3px;padding:0 .3em}
svg{display:block}
svg.chart{max-width:100%;height:auto;background:#fff;border-radius:4px}
svg.cells{width:100%;height:1.5rem}
rect.nodata{fill:var(--none)}rect.ok{fill:var(--up)}rect.partial{fill:var(--warn)}rect.failed{fill:var(--down)}
dl.figures{display:flex;flex-wrap:wrap;gap:.5rem 1.5rem;margin:.5rem 0}
dl.figures dt{color:var(--mute);font-size:.85rem}dl.figures dd{margin:0;font-size:1.1rem;font-weight:600}dl.figures dd.mute{font-size:.8rem;font-weight:400}
.charts{display:flex;flex-wrap:wrap;gap:.5rem 1rem}figure{margin:0;max-width:100%}figcaption{color:var(--mute);font-size:.8rem}
pre{background:var(--card);border:1px solid var(--line);border-radius:4px;padding:.5rem;white-space:pre-wrap;overflow-wrap:anywhere;font:.8rem/1.4 ui-monospace,monospace}
.group{border:1px solid var(--line);border-radius:6px;padding:.25rem .75rem .75rem;margin:1rem 0}
.bar-head{display:flex;flex-wrap:wrap;justify-content:space-between;gap:0 1rem;margin:.6rem 0 .2rem}
.bar-foot{display:flex;justify-content:space-between;font-size:.75rem;color:var(--mute)}
@media (max-width:40rem){
body{padding:.75rem .75rem 2rem}
table.stack,table.stack tbody,table.stack tr,table.stack td{display:block;width:auto;max-width:none}
table.stack thead{display:none}
table.stack tr{border-bottom:1px solid var(--line);padding:.4rem 0}
table.stack td{border:0;padding:.1rem 0}
table.stack td[data-label]::before{content:attr(data-label);display:block;font-size:.75rem;color:var(--mute)}
}
`;

/** The Content-Security-Policy of every page built on PAGE_STYLE. */
export const PAGE_CSP = pageCsp(PAGE_STYLE);

/** The document around a page's body: no script, the one style element, an inline favicon. */
export function pageDocument(opts: { title: string; state: 'up' | 'down' | 'unknown'; body: string; refreshSeconds?: number }): string {
  const refresh =
    opts.refreshSeconds === undefined ? '' : `\n<meta http-equiv="refresh" content="${Math.max(1, Math.round(opts.refreshSeconds))}">`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">${refresh}
<title>${esc(opts.title)}</title>
${favicon(opts.state)}
<style>${PAGE_STYLE}</style>
</head>
<body>
${opts.body}
</body>
</html>
`;
}

/** `<time>` with the machine-readable instant and a UTC rendering a person reads at a glance. */
export function time(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return esc(iso);
  const text = `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
  return `<time datetime="${esc(d.toISOString())}">${text}</time>`;
}

// A favicon inline keeps the browser from fetching /favicon.ico, which the CSP would refuse and
// log as a violation; its colour also tells a background tab how things stand.
export function favicon(state: 'up' | 'down' | 'unknown'): string {
  const fill = { up: '%231f883d', down: '%23cf222e', unknown: '%235f6b76' }[state];
  return `<link rel="icon" href="data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'%3E%3Ccircle cx='8' cy='8' r='7' fill='${fill}'/%3E%3C/svg%3E">`;
}

/** A table cell's markup, with a class when it needs one (`msg`, `url`). */
export type Cell = string | { html: string; cls: string };

/** A table that stacks into cards on a phone: `head` are the column names, each row's cells in order. */
export function stackTable(head: readonly string[], rows: ReadonlyArray<readonly Cell[]>): string {
  const th = head.map((h) => `<th scope="col">${esc(h)}</th>`).join('');
  const tr = rows.map((cells) => `<tr>${cells.map((c, i) => cell(head[i] ?? '', c)).join('')}</tr>`);
  return `<table class="stack">\n<thead><tr>${th}</tr></thead>\n<tbody>\n${tr.join('\n')}\n</tbody>\n</table>`;
}

function cell(label: string, c: Cell): string {
  return typeof c === 'string'
    ? `<td data-label="${esc(label)}">${c}</td>`
    : `<td data-label="${esc(label)}" class="${c.cls}">${c.html}</td>`;
}

// Code-unit order, not locale order, so the page reads the same on every host.
export function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** A probe's own page; the id is percent-encoded, so `a/b` or `__proto__` stays one path segment. */
export function probeHref(id: string): string {
  return `/probes/${encodeURIComponent(id)}`;
}

/** A page saying what was not found, for people who followed a link (the API answers JSON). */
export function renderNotFoundPage(message: string): RenderedPage {
  const body = `<header>\n<h1>Not found</h1>\n<a href="/">all probes</a>\n</header>\n<main>\n<p>${esc(message)}</p>\n</main>`;
  return { body: pageDocument({ title: 'Not found', state: 'unknown', body }), csp: PAGE_CSP };
}
