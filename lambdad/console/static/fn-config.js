// The Configuration tab: UpdateFunctionConfiguration and reserved concurrency, the API's messages shown at
// the field they name.
import { call, h, toast } from "./app.js";

export async function show(root, fn) {
  const cfg = fn.Configuration;
  const name = cfg.FunctionName;
  const fields = {};  // API field (lower case) -> its message element
  const field = (label, key, input, hint) => {
    const msg = h("span.field-error", { id: `err-${key}`, role: "alert" });
    fields[key.toLowerCase()] = msg;
    input.setAttribute("aria-describedby", `err-${key}`);
    return h("label", {}, label, hint ? h("span.muted", {}, ` ${hint}`) : null, input, msg);
  };
  const logging = cfg.LoggingConfig || {};
  const memory = h("input", { type: "number", name: "MemorySize", value: cfg.MemorySize });
  const timeout = h("input", { type: "number", name: "Timeout", value: cfg.Timeout });
  const storage = h("input", { type: "number", name: "EphemeralStorage", value: (cfg.EphemeralStorage || {}).Size || 512 });
  const handler = h("input", { name: "Handler", value: cfg.Handler || "", spellcheck: "false" });
  const description = h("input", { name: "Description", value: cfg.Description || "" });
  const layers = h("textarea.code", { name: "Layers", rows: 3, spellcheck: "false" }, (cfg.Layers || []).map((l) => l.Arn).join("\n"));
  const format = h("select", { name: "LogFormat" }, ["Text", "JSON"].map((v) => h("option", { selected: logging.LogFormat === v }, v)));
  const levels = ["", "TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];
  const appLevel = h("select", { name: "ApplicationLogLevel" }, levels.map((v) => h("option", { value: v, selected: (logging.ApplicationLogLevel || "") === v }, v || "(default)")));
  const sysLevel = h("select", { name: "SystemLogLevel" }, ["", "DEBUG", "INFO", "WARN"].map((v) => h("option", { value: v, selected: (logging.SystemLogLevel || "") === v }, v || "(default)")));
  const logGroup = h("input", { name: "LogGroup", value: logging.LogGroup || "", spellcheck: "false" });
  const reserved = (fn.Concurrency || {}).ReservedConcurrentExecutions;
  const concurrency = h("input", { type: "number", name: "ReservedConcurrentExecutions", value: reserved ?? "", placeholder: "unreserved" });
  const vars = h("div");
  const addVar = (k = "", v = "") => {
    const row = h("div.kv", {}, h("input", { "aria-label": "Key", value: k, spellcheck: "false" }), h("input", { "aria-label": "Value", value: v, spellcheck: "false" }),
      h("button.quiet", { type: "button", "aria-label": "Remove variable", onclick: () => row.remove() }, "×"));
    vars.append(row);
  };
  for (const [k, v] of Object.entries((cfg.Environment || {}).Variables || {})) addVar(k, v);
  const general = h("p.error", { role: "alert" });
  const saveButton = h("button.primary", { type: "submit" }, "Save configuration");
  const form = h("form", {},
    h("div.grid3", {},
      field("Memory (MB)", "memorySize", memory, "128–10240"),
      field("Timeout (seconds)", "timeout", timeout, "1–900"),
      field("Ephemeral storage /tmp (MB)", "ephemeralStorage", storage, "512–10240")),
    h("div.grid2", {}, field("Handler", "handler", handler), field("Description", "description", description)),
    h("h2", {}, "Environment variables"), vars,
    h("button", { type: "button", onclick: () => addVar() }, "Add variable"),
    (fields["environment"] = h("p.field-error#err-environment", { role: "alert" })),
    h("h2", {}, "Layers"), field("Layer version ARNs, one a line", "layers", layers),
    h("h2", {}, "Logging"),
    h("div.grid3", {}, field("Log format", "loggingConfig", format), field("Application log level (JSON)", "applicationLogLevel", appLevel),
      field("System log level (JSON)", "systemLogLevel", sysLevel)),
    field("Log group", "logGroup", logGroup),
    h("h2", {}, "Concurrency"),
    field("Reserved concurrency", "reservedConcurrentExecutions", concurrency, "empty: use the account's unreserved pool"),
    general, saveButton);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    general.textContent = "";
    for (const m of Object.values(fields)) m.textContent = "";
    const variables = {};
    for (const row of vars.children) {
      const [k, v] = row.querySelectorAll("input");
      if (k.value.trim()) variables[k.value.trim()] = v.value;
    }
    const loggingConfig = { LogFormat: format.value };
    if (appLevel.value) loggingConfig.ApplicationLogLevel = appLevel.value;
    if (sysLevel.value) loggingConfig.SystemLogLevel = sysLevel.value;
    if (logGroup.value.trim()) loggingConfig.LogGroup = logGroup.value.trim();
    const params = {
      FunctionName: name, MemorySize: Number(memory.value), Timeout: Number(timeout.value),
      EphemeralStorage: { Size: Number(storage.value) }, Handler: handler.value, Description: description.value,
      Environment: { Variables: variables }, Layers: layers.value.split("\n").map((s) => s.trim()).filter(Boolean),
      LoggingConfig: loggingConfig,
    };
    saveButton.disabled = true;
    try {
      await call("lambda", "UpdateFunctionConfiguration", params);
      const wanted = concurrency.value.trim();
      if (wanted === "" && reserved !== undefined) await call("lambda", "DeleteFunctionConcurrency", { FunctionName: name });
      else if (wanted !== "" && Number(wanted) !== reserved) {
        try { await call("lambda", "PutFunctionConcurrency", { FunctionName: name, ReservedConcurrentExecutions: Number(wanted) }); }
        catch (ex) { report(fields.reservedconcurrentexecutions, ex); throw null; }
      }
      toast("Configuration saved");
    } catch (ex) {
      if (ex) report(null, ex);
    } finally { saveButton.disabled = false; }
  });
  function report(where, ex) {
    // "Value '5' at 'memorySize' failed to satisfy constraint: …" -> at the memorySize field
    const text = `${ex.code || "Error"}: ${ex.message}`;
    const at = /at '([A-Za-z]+)/.exec(ex.message || "");
    const target = where || (at && fields[at[1].toLowerCase()]) || (/environment|variable|reserved keys/i.test(ex.message || "") && fields.environment)
      || (/layer/i.test(ex.message || "") && fields.layers) || general;
    target.textContent = text;
    if (target !== general) general.textContent = "Not saved: see the message at the field.";
  }
  root.append(form);
}
