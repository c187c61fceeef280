import { apiFetch, bindKeyForm, el } from "./key.js";

const $ = (id) => document.getElementById(id);
let timer;

bindKeyForm($("key-form"), () => void refresh());

/** Puts `rows` in the table's body, or one row saying `none` across all its columns. */
function fillTable(id, rows, none) {
  const table = $(id);
  const columns = table.tHead.rows[0].cells.length;
  table.tBodies[0].replaceChildren(
    ...(rows.length ? rows : [el("tr", {}, el("td", { colspan: columns, class: "muted" }, none))]),
  );
}

const formatSeconds = (s) =>
  s < 90 ? `${Math.round(s)} s` : s < 5400 ? `${Math.round(s / 60)} min` : `${(s / 3600).toFixed(1)} h`;

/** Opens a store object the API serves behind the key: fetched with the key, shown from a blob. */
async function openWithKey(path, download) {
  try {
    const res = await apiFetch(path);
    if (!res.ok) throw new Error((await res.json().catch(() => ({}))).message ?? `HTTP ${res.status}`);
    const url = URL.createObjectURL(await res.blob());
    const a = el("a", { href: url, ...(download ? { download } : { target: "_blank", rel: "noopener" }) });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  } catch (err) {
    $("status").textContent = `could not open ${path}: ${err.message}`;
  }
}

function progress(done, total, label) {
  return el(
    "span",
    { class: "progress" },
    el("progress", { value: done, max: Math.max(1, total), "aria-label": label }),
    ` ${done}/${total}`,
  );
}

function render(s) {
  $("workers").textContent =
    `workers connected: features ${s.workers.features}, training ${s.workers.training}, captions ${s.workers.captions}, caption-bulk ${s.workers["caption-bulk"]}` +
    (s.encoder ? ` · current encoder ${s.encoder}` : "");

  const ds = [];
  for (const d of s.datasets) {
    const feats = d.features.length ? d.features : [undefined];
    feats.forEach((f, i) => {
      const q = f ? Object.entries(f.quarantine) : [];
      ds.push(
        el(
          "tr",
          {},
          i === 0 ? el("th", { scope: "row", rowspan: feats.length }, d.name) : undefined,
          i === 0 ? el("td", { rowspan: feats.length }, d.images) : undefined,
          i === 0
            ? el("td", { rowspan: feats.length }, `${d.splits.train} / ${d.splits.val} / ${d.splits.test}`)
            : undefined,
          el("td", {}, f ? `${f.encoderId}${f.current ? " (current)" : ""}` : "no encoder yet"),
          el(
            "td",
            {},
            f
              ? [
                  progress(f.shards.done, f.shards.total, `feature shards of ${d.name} done`),
                  el(
                    "small",
                    {},
                    ` ${f.shards.active} running, ${f.shards.queued} queued, ${f.shards.failed} failed, ${f.shards.missing} not queued`,
                  ),
                ]
              : "—",
          ),
          el("td", {}, q.length ? q.map(([r, n]) => `${r} ${n}`).join(", ") : "none"),
          el(
            "td",
            {},
            f && f.etaSeconds !== undefined && f.shards.queued + f.shards.active > 0
              ? formatSeconds(f.etaSeconds)
              : "—",
          ),
        ),
      );
    });
  }
  fillTable("datasets", ds, "none ingested yet: capflow ingest <dir>");

  const runs = s.runs.map((r) =>
    el(
      "tr",
      {},
      el("th", { scope: "row" }, r.runId),
      el("td", {}, r.dataset ?? "—"),
      el("td", {}, `${r.epoch}${r.epochs ? `/${r.epochs}` : ""}${r.finished ? " (finished)" : ""}`),
      el("td", {}, r.scores ? r.scores.valLoss.toFixed(3) : "—"),
      el("td", {}, r.scores ? r.scores.bleu4.toFixed(3) : "—"),
      el("td", {}, r.scores ? r.scores.cider.toFixed(3) : "—"),
      el("td", {}, r.publishedAs.join(", ") || "—"),
      el(
        "td",
        {},
        r.report
          ? el(
              "a",
              {
                href: `/v1/runs/${encodeURIComponent(r.runId)}/report`,
                onclick: (e) => (
                  e.preventDefault(),
                  openWithKey(`/v1/runs/${encodeURIComponent(r.runId)}/report`)
                ),
              },
              "HTML report",
            )
          : el("span", { class: "muted" }, `capflow report ${r.runId}`),
      ),
    ),
  );
  fillTable("runs", runs, "no training runs yet");

  const batches = s.batches.map((b) =>
    el(
      "tr",
      {},
      el("th", { scope: "row" }, b.id),
      el("td", {}, `${b.dataset}${b.split ? `/${b.split}` : ""}`),
      el("td", {}, b.model),
      el("td", { class: `state ${b.status}` }, b.status),
      el(
        "td",
        {},
        progress(b.shards.done, b.shards.total, `shards of ${b.id} done`),
        b.shards.failed ? el("small", {}, ` ${b.shards.failed} failed`) : undefined,
      ),
      el("td", {}, `${b.captioned}/${b.images}`),
      el(
        "td",
        {},
        b.results
          ? el(
              "a",
              {
                href: b.results,
                onclick: (e) => (e.preventDefault(), openWithKey(b.results, `${b.id}.jsonl`)),
              },
              "results.jsonl",
            )
          : "—",
      ),
    ),
  );
  fillTable("batches", batches, "no bulk caption jobs yet");
}

async function refresh() {
  try {
    const res = await apiFetch("/v1/status");
    const body = await res.json();
    if (!res.ok) throw new Error(body.message ?? `HTTP ${res.status}`);
    render(body);
    $("status").textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (err) {
    $("status").textContent = `could not load the status: ${err.message}`;
  }
}

function schedule() {
  clearInterval(timer);
  if ($("auto").checked) timer = setInterval(() => void refresh(), 5000);
}
$("auto").addEventListener("change", schedule);
$("refresh").addEventListener("click", () => void refresh());
schedule();
void refresh();
