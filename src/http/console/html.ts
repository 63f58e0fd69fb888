/** Server-rendered HTML for the console: escaped by default, no script anywhere (its CSP allows none). */

export type Html = { readonly __html: string };
export const raw = (s: string): Html => ({ __html: s });
const ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
export const esc = (v: unknown): string => (v === null || v === undefined ? "" : String(v)).replace(/[&<>"']/g, (c) => ESCAPES[c] as string);

/** A tagged template: interpolated values are escaped unless they are Html (or arrays of it). */
export function html(strings: TemplateStringsArray, ...values: unknown[]): Html {
  let out = strings[0] ?? "";
  values.forEach((v, i) => {
    out += render(v) + (strings[i + 1] ?? "");
  });
  return raw(out);
}
function render(v: unknown): string {
  if (Array.isArray(v)) return v.map(render).join("");
  if (typeof v === "object" && v !== null && "__html" in v) return (v as Html).__html;
  return esc(v);
}

export const time = (ms: number | null | undefined): Html =>
  ms === null || ms === undefined ? raw("–") : html`<time datetime="${new Date(ms).toISOString()}">${new Date(ms).toISOString().replace("T", " ").slice(0, 19)}</time>`;

export interface Layout {
  title: string;
  csrf?: string;
  /** Seconds until the page reloads itself (the overview's live refresh, without script). */
  refreshSeconds?: number;
  current?: string;
}

const NAV: [string, string][] = [
  ["overview", "/console"],
  ["callbacks", "/console/callbacks"],
  ["events", "/console/events"],
  ["orders", "/console/orders"],
  ["actions", "/console/actions"],
];

export function page(l: Layout, body: Html): string {
  const nav =
    l.csrf === undefined
      ? raw("")
      : html`<nav aria-label="Console">
          <ul>
            ${NAV.map(([name, href]) => html`<li><a href="${href}" ${raw(l.current === name ? ' aria-current="page"' : "")}>${name[0]?.toUpperCase()}${name.slice(1)}</a></li>`)}
          </ul>
          <form method="post" action="/console/sign-out" class="inline"><input type="hidden" name="csrf" value="${l.csrf}" /><button type="submit">Sign out</button></form>
        </nav>`;
  return `<!doctype html>
${
  html`<html lang="en">
    <head>
      <meta charset="utf-8" />
      <meta name="viewport" content="width=device-width, initial-scale=1" />
      ${l.refreshSeconds === undefined ? raw("") : html`<meta http-equiv="refresh" content="${l.refreshSeconds}" />`}
      <title>${l.title} · orderbridge</title>
      <link rel="stylesheet" href="/console/console.css" />
    </head>
    <body>
      <header><a class="brand" href="/console">orderbridge</a>${nav}</header>
      <main id="main">
        <h1>${l.title}</h1>
        ${body}
      </main>
    </body>
  </html>`.__html
}`;
}

/** A table with a caption, its header cells scoped. */
export function table(caption: string, head: string[], rows: Html[][], empty = "Nothing here."): Html {
  if (rows.length === 0) return html`<p class="empty"><strong>${caption}:</strong> ${empty}</p>`;
  return html`<div class="scroll">
    <table>
      <caption>
        ${caption}
      </caption>
      <thead>
        <tr>
          ${head.map((h) => html`<th scope="col">${h}</th>`)}
        </tr>
      </thead>
      <tbody>
        ${rows.map(
          (r) =>
            html`<tr>
              ${r.map((c) => html`<td>${c}</td>`)}
            </tr>`,
        )}
      </tbody>
    </table>
  </div>`;
}

export const CSS = `:root{color-scheme:light dark;--fg:#1b1f24;--bg:#fff;--muted:#59636e;--line:#d1d9e0;--accent:#0b57d0;--bad:#b3261e;--ok:#146c2e}
@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--bg:#0d1117;--muted:#9aa5b1;--line:#30363d;--accent:#79b8ff;--bad:#ff938a;--ok:#7ee2a8}}
*{box-sizing:border-box}body{margin:0;font:16px/1.5 system-ui,sans-serif;color:var(--fg);background:var(--bg)}
header{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:center;padding:.5rem 1rem;border-bottom:1px solid var(--line)}
.brand{font-weight:700;text-decoration:none;color:var(--fg)}nav{display:flex;flex-wrap:wrap;gap:.5rem;align-items:center}
nav ul{display:flex;flex-wrap:wrap;gap:.75rem;list-style:none;margin:0;padding:0}a{color:var(--accent)}a[aria-current]{font-weight:700}
main{padding:1rem;max-width:80rem}h1{font-size:1.5rem;margin:.5rem 0 1rem}h2{font-size:1.15rem;margin-top:1.5rem}
.scroll{overflow-x:auto}table{border-collapse:collapse;width:100%;font-size:.9rem}caption{text-align:left;font-weight:600;padding:.25rem 0}
th,td{border-bottom:1px solid var(--line);padding:.35rem .5rem;text-align:left;vertical-align:top}th{color:var(--muted)}
pre{white-space:pre-wrap;word-break:break-word;background:color-mix(in srgb,var(--fg) 6%,var(--bg));padding:.75rem;border-radius:4px;font-size:.85rem}
form.filters{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:end;margin-bottom:1rem}label{display:flex;flex-direction:column;font-size:.85rem;color:var(--muted)}
input,select,button{font:inherit;padding:.35rem .5rem;border:1px solid var(--line);border-radius:4px;background:var(--bg);color:var(--fg)}
button{cursor:pointer;border-color:var(--accent);color:var(--accent)}button:focus-visible,a:focus-visible,input:focus-visible,select:focus-visible{outline:3px solid var(--accent);outline-offset:2px}
.inline{display:inline}.bad{color:var(--bad)}.ok{color:var(--ok)}.empty,.muted{color:var(--muted)}dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem}dt{color:var(--muted)}dd{margin:0}
.notice{border-left:4px solid var(--accent);padding:.5rem .75rem;margin:1rem 0}.notice.bad{border-color:var(--bad)}.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(14rem,1fr));gap:1rem}
.card{border:1px solid var(--line);border-radius:6px;padding:.75rem}.big{font-size:1.6rem;font-weight:700}`;
