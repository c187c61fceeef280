import { apiFetch, bindKeyForm, el } from "./key.js";

const $ = (id) => document.getElementById(id);
const status = $("status");
let previewUrl;

bindKeyForm($("key-form"));

function query() {
  const method = $("method").value;
  const params = new URLSearchParams({ method, model: $("model").value || "default" });
  if (method === "beam") params.set("beamWidth", $("beam-width").value || "3");
  return params;
}

async function caption(request, label) {
  status.textContent = `captioning ${label}…`;
  $("result").hidden = true;
  try {
    let res = await request();
    let body = await res.json();
    // 202: the caption is queued or running; poll where the API says.
    while (res.status === 202 && body.poll) {
      status.textContent = `captioning ${label}: ${body.status}…`;
      await new Promise((r) => setTimeout(r, 1000));
      res = await apiFetch(body.poll);
      body = await res.json();
    }
    if (!res.ok || body.status === "failed") throw new Error(body.message ?? `HTTP ${res.status}`);
    show(body);
    status.textContent = `captioned ${label}`;
  } catch (err) {
    status.textContent = `could not caption ${label}: ${err.message}`;
  }
}

function show(r) {
  $("caption").textContent = r.caption || "(empty caption)";
  const flags = $("flags");
  flags.replaceChildren();
  if (typeof r.confidence === "number")
    flags.append(el("span", { class: "badge" }, `confidence ${(r.confidence * 100).toFixed(0)}%`));
  if (r.outOfDomain === true)
    flags.append(
      el(
        "span",
        { class: "badge warn", role: "note" },
        "out of domain: unlike the images this model was trained on",
      ),
    );
  const facts = $("facts");
  facts.replaceChildren();
  const fact = (k, v) => facts.append(el("dt", {}, k), el("dd", {}, v));
  fact("model version", r.modelVersion);
  fact("method", r.method);
  fact("log-probability", r.logProb.toFixed(3));
  if (r.timings)
    fact("time", `${r.timings.totalMs} ms (encode ${r.timings.encodeMs}, decode ${r.timings.decodeMs})`);
  const table = $("alternatives");
  const rows = (r.alternatives ?? []).map((a, i) =>
    el(
      "tr",
      {},
      el("td", {}, i + 1),
      el("td", {}, a.caption || "(empty caption)"),
      el("td", {}, a.score.toFixed(3)),
      el("td", {}, a.logProb.toFixed(3)),
    ),
  );
  table.querySelector("tbody").replaceChildren(...rows);
  table.hidden = rows.length === 0;
  $("result").hidden = false;
}

function captionFile(file) {
  if (!file) return;
  if (previewUrl) URL.revokeObjectURL(previewUrl);
  previewUrl = URL.createObjectURL(file);
  const img = $("preview");
  img.src = previewUrl;
  img.hidden = false;
  const form = new FormData();
  form.append("image", file, file.name || "pasted-image");
  return caption(
    () => apiFetch(`/v1/captions?${query()}`, { method: "POST", body: form }),
    file.name || "the pasted image",
  );
}

$("file").addEventListener("change", (e) => captionFile(e.target.files[0]));

const drop = $("drop");
drop.addEventListener("dragover", (e) => {
  e.preventDefault();
  drop.classList.add("over");
});
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  drop.classList.remove("over");
  const file = [...e.dataTransfer.files].find((f) => f.type.startsWith("image/"));
  if (file) captionFile(file);
  else {
    const url = e.dataTransfer.getData("text/uri-list") || e.dataTransfer.getData("text/plain");
    if (url) captionUrl(url.trim());
  }
});

document.addEventListener("paste", (e) => {
  const target = e.target;
  if (target instanceof HTMLInputElement && target.type !== "file") return; // pasting into a field
  const file = [...(e.clipboardData?.files ?? [])].find((f) => f.type.startsWith("image/"));
  if (file) return void captionFile(file);
  const text = e.clipboardData?.getData("text/plain")?.trim();
  if (text && /^https?:\/\//.test(text)) captionUrl(text);
});

function captionUrl(url) {
  $("url").value = url;
  $("preview").hidden = true;
  const params = query();
  const body = {
    url,
    model: params.get("model"),
    method: params.get("method"),
    ...(params.has("beamWidth") ? { beamWidth: Number(params.get("beamWidth")) } : {}),
  };
  return caption(
    () =>
      apiFetch("/v1/captions", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      }),
    url,
  );
}

$("url-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const url = $("url").value.trim();
  if (url) captionUrl(url);
});
