// The Test tab: saved test events (the caller's own, kept by the server) and Lambda's samples; run one with
// Invoke (LogType Tail) and show the result, the REPORT line's figures and the log tail.
import { api, call, h, b64, unb64, toast, confirmDialog } from "./app.js";
import { SAMPLES } from "./samples.js";

export async function show(root, fn) {
  const name = fn.Configuration.FunctionName;
  const path = `events/${encodeURIComponent(name)}`;
  let saved = (await api(path)).Events;
  const picker = h("select", { "aria-label": "Test event" });
  const eventName = h("input", { "aria-label": "Event name", placeholder: "event name", pattern: "[A-Za-z0-9_\\-]{1,25}", size: 18 });
  const text = h("textarea.code", { rows: 9, spellcheck: "false", "aria-label": "Event JSON" });
  const qualifier = h("input", { "aria-label": "Qualifier", placeholder: "$LATEST", size: 10 });
  const error = h("p.error", { role: "alert" });
  const result = h("div", { "aria-live": "polite" });
  const runButton = h("button.primary", {}, "Test");
  const fill = () => {
    picker.replaceChildren(
      h("optgroup", { label: "Saved events" }, saved.map((e) => h("option", { value: `saved:${e.Name}` }, e.Name))),
      h("optgroup", { label: "Samples" }, Object.keys(SAMPLES).map((k) => h("option", { value: `sample:${k}` }, k))));
  };
  const pick = () => {
    const [kind, key] = [picker.value.split(":")[0], picker.value.slice(picker.value.indexOf(":") + 1)];
    if (kind === "saved") { const e = saved.find((x) => x.Name === key); text.value = e.Body; eventName.value = key; }
    else { text.value = JSON.stringify(SAMPLES[key], null, 2); eventName.value = key.replace(/[^A-Za-z0-9_-]/g, "-").slice(0, 25); }
  };
  fill();
  picker.addEventListener("change", pick);
  pick();
  const saveEvent = async () => {
    error.textContent = "";
    try {
      await api(`${path}/${encodeURIComponent(eventName.value)}`, { method: "PUT", text: text.value });
      saved = (await api(path)).Events;
      fill();
      picker.value = `saved:${eventName.value}`;
      toast(`Saved event ${eventName.value}`);
    } catch (ex) { error.textContent = ex.message; }
  };
  const deleteEvent = async () => {
    if (!picker.value.startsWith("saved:")) return;
    const key = picker.value.slice(6);
    if (!(await confirmDialog(`Delete the event ${key}?`, "Only this saved test event is deleted."))) return;
    await api(`${path}/${encodeURIComponent(key)}`, { method: "DELETE" });
    saved = (await api(path)).Events;
    fill();
    pick();
  };
  const run = async () => {
    error.textContent = "";
    try { JSON.parse(text.value); } catch (ex) { error.textContent = `The event is not valid JSON: ${ex.message}`; return; }
    runButton.disabled = true;
    result.replaceChildren(h("p.muted", {}, "Running…"));
    const params = { FunctionName: name, Payload: b64(text.value), LogType: "Tail" };
    if (qualifier.value.trim()) params.Qualifier = qualifier.value.trim();
    try {
      const out = await call("lambda", "Invoke", params);
      result.replaceChildren(...render(out).filter(Boolean));
    } catch (ex) {
      result.replaceChildren(h("h2.status-bad", {}, "Invoke failed"), h("p.error", {}, `${ex.code || "Error"}: ${ex.message}`));
    } finally { runButton.disabled = false; }
  };
  runButton.addEventListener("click", run);
  text.addEventListener("keydown", (e) => { if ((e.ctrlKey || e.metaKey) && e.key === "Enter") { e.preventDefault(); run(); } });
  root.append(
    h("div.row", {}, picker, eventName, h("button", { onclick: saveEvent }, "Save event"), h("button.quiet", { onclick: deleteEvent }, "Delete event"),
      h("span.grow"), h("label.row", {}, "Qualifier ", qualifier), runButton),
    h("p.muted", {}, "Ctrl+Enter runs the event. Saved events are yours: other users of this lambdad do not see them."),
    text, error, result);
}

function render(out) {
  const log = out.LogResult ? unb64(out.LogResult) : "";
  const report = /REPORT RequestId: (\S+)\s+Duration: ([\d.]+) ms\s+Billed Duration: (\d+) ms\s+Memory Size: (\d+) MB\s+Max Memory Used: (\d+) MB(?:\s+Init Duration: ([\d.]+) ms)?(?:\s+Status: (\w+))?/.exec(log);
  const failed = !!out.FunctionError;
  let payload = out.Payload || "";
  let error = null;
  try { const parsed = JSON.parse(payload); payload = JSON.stringify(parsed, null, 2); if (failed) error = parsed; } catch { /* not JSON: as it is */ }
  const stat = (label, value) => h("div", {}, h("span", {}, label), value);
  return [
    h("h2", { class: failed ? "status-bad" : "status-ok" }, failed ? `Failed: ${(error && error.errorType) || out.FunctionError}` : "Succeeded"),
    failed && error && error.errorMessage ? h("p.error", {}, error.errorMessage) : null,
    h("div.stats", {},
      stat("Duration", report ? `${report[2]} ms` : "–"), stat("Billed duration", report ? `${report[3]} ms` : "–"),
      stat("Memory size", report ? `${report[4]} MB` : "–"), stat("Max memory used", report ? `${report[5]} MB` : "–"),
      report && report[6] ? stat("Init duration", `${report[6]} ms`) : null,
      stat("Version", out.ExecutedVersion || "–"), stat("Request id", h("span.mono", {}, report ? report[1] : "–"))),
    h("h2", {}, "Response"), h("pre.result", {}, payload),
    h("h2", {}, "Log output (the last 4 KB)"), h("pre.log", {}, log),
  ];
}
