// The API key lives in this browser only (localStorage), and goes out as x-api-key on /v1 calls.
const STORAGE = "capflow_api_key";

export function apiKey() {
  return localStorage.getItem(STORAGE) ?? "";
}

/** fetch() with the stored key; a 401 turns into an error that says what to do. */
export async function apiFetch(path, init = {}) {
  const headers = new Headers(init.headers ?? {});
  const key = apiKey();
  if (key) headers.set("x-api-key", key);
  const res = await fetch(path, { ...init, headers });
  if (res.status === 401)
    throw new Error("this API needs a key: enter it in the API key field above and save");
  return res;
}

/** The key form in the header: shows whether a key is stored, saves or forgets it. */
export function bindKeyForm(form, onChange) {
  const input = form.querySelector("input");
  const state = form.querySelector("[data-key-state]");
  const show = () => {
    state.textContent = apiKey() ? "key stored in this browser" : "no key stored";
  };
  input.value = apiKey();
  show();
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    if (input.value) localStorage.setItem(STORAGE, input.value);
    else localStorage.removeItem(STORAGE);
    show();
    onChange?.();
  });
}

/** A small element builder: text only (never HTML from data). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat())
    if (c !== undefined && c !== null) node.append(c instanceof Node ? c : String(c));
  return node;
}
