// The console's shell: the session, the API helper, the router, the functions list and the create form.
// Each function tab is a module of its own (fn-*.js), loaded when first opened.

export const state = { me: null };

export class ApiError extends Error {
  constructor(status, code, message) { super(message || code || `HTTP ${status}`); this.status = status; this.code = code; }
}

// A console API request. State-changing ones carry the session's CSRF token in X-CSRF-Token.
export async function api(path, { method = "GET", body, text } = {}) {
  const headers = {};
  if (method !== "GET") headers["X-CSRF-Token"] = state.me ? state.me.CsrfToken : "";
  let payload;
  if (text !== undefined) { payload = text; headers["Content-Type"] = "application/json"; }
  else if (body !== undefined) { payload = JSON.stringify(body); headers["Content-Type"] = "application/json"; }
  const response = await fetch(`/console/api/${path}`, { method, headers, body: payload, credentials: "same-origin" });
  const data = await response.json().catch(() => ({}));
  if (response.status === 401 && path !== "signin") { signedOut(); }
  if (!response.ok) {
    const e = data.Error || {};
    throw new ApiError(response.status, e.Code, e.Message);
  }
  return data;
}

// An API operation (service: lambda, logs, monitoring) as the signed-in principal.
export const call = (service, operation, params = {}) =>
  api(`call/${service}/${operation}`, { method: "POST", body: params });

// base64 of a string's UTF-8 (blobs: Invoke's Payload, a zip)
export function b64(text) {
  const bytes = new TextEncoder().encode(text);
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}
export function unb64(data) {
  const bin = atob(data);
  return new TextDecoder().decode(Uint8Array.from(bin, (c) => c.charCodeAt(0)));
}

// h("tag.class#id", {attr: value, onclick: fn}, ...children): an element; children are nodes or text.
export function h(spec, attrs = {}, ...children) {
  const [, tag, rest] = spec.match(/^([a-z0-9]+)(.*)$/i);
  const el = document.createElement(tag);
  for (const part of rest.match(/[.#][^.#]+/g) || []) {
    if (part[0] === ".") el.classList.add(part.slice(1)); else el.id = part.slice(1);
  }
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "value") el.value = v;
    else if (k === "checked") el.checked = !!v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) el.append(c instanceof Node ? c : String(c));
  return el;
}

export function toast(message) {
  const t = document.getElementById("toast");
  t.textContent = message;
  t.classList.add("show");
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => t.classList.remove("show"), 2500);
}

// A modal confirmation: resolves true when confirmed. `typed`: the text the user must type first.
export function confirmDialog(title, message, { action = "Delete", typed } = {}) {
  return new Promise((resolve) => {
    const input = typed ? h("input", { "aria-label": `Type ${typed} to confirm`, placeholder: typed }) : null;
    const ok = h("button.danger", { type: "submit", disabled: !!typed }, action);
    if (input) input.addEventListener("input", () => { ok.disabled = input.value !== typed; });
    const dialog = h("dialog", {},
      h("form", { method: "dialog" }, h("h2", {}, title), h("p", {}, message),
        typed ? h("label", {}, `Type “${typed}” to confirm`, input) : null,
        h("div.row", {}, ok, h("button", { type: "button", onclick: () => dialog.close("cancel") }, "Cancel"))));
    dialog.addEventListener("close", () => { resolve(dialog.returnValue !== "cancel" && dialog.returnValue !== ""); dialog.remove(); });
    ok.addEventListener("click", (e) => { e.preventDefault(); dialog.close("ok"); });
    document.body.append(dialog);
    dialog.showModal();
    (input || ok).focus();
  });
}

export const fmtDate = (iso) => iso ? new Date(iso.replace(/\+0000$/, "Z")).toLocaleString() : "";

// -- session ----------------------------------------------------------------------------------------------------

const main = () => document.getElementById("main");

function signedOut() {
  state.me = null;
  document.getElementById("who").textContent = "";
  document.getElementById("signout").hidden = true;
  for (const el of [...main().children]) if (el.id !== "signin") el.remove();
  document.getElementById("signin").hidden = false;
}

function signedIn(me) {
  state.me = me;
  document.getElementById("who").textContent = me.Root ? `root of ${me.AccountId}` : me.Principal;
  document.getElementById("signout").hidden = false;
  document.getElementById("signin").hidden = true;
}

async function start() {
  document.getElementById("signin-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const form = new FormData(e.target);
    const err = document.getElementById("signin-error");
    err.textContent = "";
    try {
      const me = await api("signin", { method: "POST", body: { AccessKeyId: form.get("AccessKeyId"), SecretAccessKey: form.get("SecretAccessKey") } });
      e.target.reset();
      signedIn(me);
      render();
    } catch (ex) { err.textContent = ex.message; }
  });
  document.getElementById("signout").addEventListener("click", async () => {
    try { await api("signout", { method: "POST" }); } catch { /* ended already */ }
    signedOut();
  });
  window.addEventListener("hashchange", render);
  try { signedIn(await api("session")); } catch { signedOut(); }
  document.getElementById("loading")?.remove();
  if (state.me) render();
}

// -- routes -----------------------------------------------------------------------------------------------------

let leaving = [];  // what the page on view stops when another replaces it (a log follower's timer)
export const onLeave = (fn) => leaving.push(fn);

export function page(...children) {
  for (const fn of leaving.splice(0)) fn();
  for (const el of [...main().children]) if (el.id !== "signin") el.remove();
  const section = h("section.page", {}, ...children);
  main().append(section);
  return section;
}

async function render() {
  if (!state.me) return;
  const hash = decodeURIComponent(location.hash.slice(1) || "/");
  const parts = hash.split("/").filter(Boolean);
  try {
    if (parts.length === 0) await functionsList();
    else if (parts[0] === "create") await createForm();
    else if (parts[0] === "fn" && parts[1]) await functionPage(parts[1], parts[2] || "code");
    else page(h("h1", {}, "Not found"));
  } catch (ex) {
    if (ex.status !== 401) page(h("h1", {}, "Something went wrong"), h("p.error", { role: "alert" }, ex.message));
  }
}

// -- functions --------------------------------------------------------------------------------------------------

async function listAll() {
  const out = [];
  let marker;
  do {
    const page = await call("lambda", "ListFunctions", marker ? { Marker: marker, MaxItems: 50 } : { MaxItems: 50 });
    out.push(...(page.Functions || []));
    marker = page.NextMarker;
  } while (marker);
  return out.sort((a, b) => a.FunctionName.localeCompare(b.FunctionName));
}

async function recentCounts(names) {
  // invocations and errors of the last 24 hours, one GetMetricData for every function on the page
  const counts = {};
  if (!names.length) return counts;
  const queries = [];
  names.slice(0, 200).forEach((name, i) => {
    for (const metric of ["Invocations", "Errors"]) {
      queries.push({ Id: `${metric[0].toLowerCase()}${i}`, ReturnData: true, MetricStat: {
        Metric: { Namespace: "AWS/Lambda", MetricName: metric, Dimensions: [{ Name: "FunctionName", Value: name }] },
        Period: 86400, Stat: "Sum" } });
    }
  });
  const now = Date.now() / 1000;
  try {
    const out = await call("monitoring", "GetMetricData", { StartTime: now - 86400, EndTime: now, MetricDataQueries: queries });
    for (const r of out.MetricDataResults || []) {
      const i = Number(r.Id.slice(1)), sum = (r.Values || []).reduce((a, b) => a + b, 0);
      const c = counts[names[i]] ||= { inv: 0, err: 0 };
      if (r.Id[0] === "i") c.inv = sum; else c.err = sum;
    }
  } catch { /* no metrics (LAMBDAD_METRICS=off) or not allowed: the columns stay empty */ }
  return counts;
}

async function functionsList() {
  const search = h("input", { type: "search", placeholder: "Search by name, runtime…", "aria-label": "Search functions" });
  const body = h("tbody");
  const status = h("p.muted", {}, "Loading…");
  page(h("div.row", {}, h("h1.grow", {}, "Functions"), h("a.button.primary", { href: "#/create" }, "Create function")),
    h("div.row", {}, search), status,
    h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", {}, "Runtime"), h("th.num", {}, "Memory (MB)"),
      h("th", {}, "Last modified"), h("th.num", {}, "Invocations (24 h)"), h("th.num", {}, "Errors (24 h)"), h("th", {}, ""))), body));
  const functions = await listAll();
  status.textContent = functions.length ? "" : "No functions yet. Create one.";
  const counts = {};
  const draw = () => {
    const q = search.value.trim().toLowerCase();
    body.replaceChildren(...functions.filter((f) => !q || f.FunctionName.toLowerCase().includes(q) || (f.Runtime || "").includes(q)).map((f) => {
      const c = counts[f.FunctionName];
      return h("tr", {}, h("td", {}, h("a", { href: `#/fn/${encodeURIComponent(f.FunctionName)}/code` }, f.FunctionName)),
        h("td", {}, f.Runtime || f.PackageType), h("td.num", {}, f.MemorySize), h("td", {}, fmtDate(f.LastModified)),
        h("td.num", {}, c ? c.inv : ""), h("td.num", {}, c ? h("span", { class: c.err ? "status-bad" : "" }, c.err) : ""),
        h("td", {}, h("button.danger", { "aria-label": `Delete ${f.FunctionName}`, onclick: () => deleteFunction(f.FunctionName) }, "Delete")));
    }));
  };
  search.addEventListener("input", draw);
  draw();
  Object.assign(counts, await recentCounts(functions.map((f) => f.FunctionName)));
  draw();
}

export async function deleteFunction(name) {
  if (!(await confirmDialog(`Delete ${name}?`, "The function, its versions, aliases and URL are deleted. This can not be undone.", { typed: "delete" }))) return;
  try {
    await call("lambda", "DeleteFunction", { FunctionName: name });
    toast(`Deleted ${name}`);
    if (location.hash === "#/" || location.hash === "") render(); else location.hash = "#/";
  } catch (ex) { toast(ex.message); }
}

async function createForm() {
  const me = state.me;
  const runtimes = me.Runtimes;
  const error = h("p.error", { role: "alert" });
  const zip = h("input", { type: "file", accept: ".zip,application/zip", name: "zip", "aria-label": "Deployment package (.zip)" });
  const handler = h("input", { name: "Handler", placeholder: "lambda_function.lambda_handler" });
  const form = h("form.card", {},
    h("label", {}, "Function name", h("input", { name: "FunctionName", required: true, pattern: "[a-zA-Z0-9_\\-]{1,64}", autofocus: true, spellcheck: "false" })),
    h("label", {}, "Runtime", h("select", { name: "Runtime" }, runtimes.map((r) => h("option", { value: r, selected: r === "python3.12" }, r)))),
    h("label", {}, "Execution role (ARN)", h("input", { name: "Role", value: `arn:aws:iam::${me.AccountId}:role/lambda-role`, spellcheck: "false" })),
    h("fieldset", {}, h("legend", {}, "Code"),
      h("label", {}, h("input", { type: "radio", name: "source", value: "blank", checked: true }), "Blank function (Hello world)"),
      h("label", {}, h("input", { type: "radio", name: "source", value: "zip" }), "Upload a .zip"),
      h("div", {}, zip, h("label", {}, "Handler (for an uploaded zip)", handler))),
    error, h("button.primary", { type: "submit" }, "Create function"));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    error.textContent = "";
    const f = new FormData(form);
    const params = { FunctionName: f.get("FunctionName"), Runtime: f.get("Runtime"), Role: f.get("Role") };
    if (f.get("source") === "zip") {
      const file = zip.files[0];
      if (!file) { error.textContent = "Choose a .zip file to upload."; return; }
      const bytes = new Uint8Array(await file.arrayBuffer());
      let s = "";
      for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
      params.Code = { ZipFile: btoa(s) };
      params.Handler = f.get("Handler") || (params.Runtime.startsWith("node") ? "index.handler" : "lambda_function.lambda_handler");
    }
    try {
      const made = await api("create", { method: "POST", body: params });
      toast(`Created ${made.FunctionName}`);
      location.hash = `#/fn/${encodeURIComponent(made.FunctionName)}/code`;
    } catch (ex) { error.textContent = ex.message; }
  });
  page(h("h1", {}, "Create function"), form);
}

const TABS = [["code", "Code"], ["test", "Test"], ["config", "Configuration"], ["monitor", "Monitor"], ["ship", "Versions, aliases & URL"]];

async function functionPage(name, tab) {
  if (!TABS.some(([key]) => key === tab)) tab = "code";
  const fn = await call("lambda", "GetFunction", { FunctionName: name });
  const cfg = fn.Configuration;
  const body = h("div");
  page(h("div.row", {}, h("h1.grow", {}, cfg.FunctionName, " ", h("span.pill", {}, cfg.Runtime || cfg.PackageType)),
    h("button.danger", { onclick: () => deleteFunction(cfg.FunctionName) }, "Delete function")),
    h("p.muted.mono", {}, cfg.FunctionArn),
    h("nav.tabs", { "aria-label": "function" }, TABS.map(([key, label]) =>
      h("a", { href: `#/fn/${encodeURIComponent(cfg.FunctionName)}/${key}`, "aria-current": key === tab ? "page" : false }, label))),
    body);
  const module = await import(`./fn-${tab}.js`);
  await module.show(body, fn);
}

start();
