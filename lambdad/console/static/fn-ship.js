// The Versions, aliases & URL tab: PublishVersion and the versions; aliases with a weighted second version (a
// slider); the function URL (create, copy, open, delete); triggers (event source mappings and EventBridge Scheduler
// schedules: state, enable/disable).
import { call, h, toast, fmtDate, confirmDialog } from "./app.js";

export async function show(root, fn) {
  const name = fn.Configuration.FunctionName;
  const sections = { versions: h("section"), aliases: h("section"), url: h("section"), triggers: h("section") };
  root.append(sections.versions, sections.aliases, sections.url, sections.triggers);
  const reload = () => Promise.all([versions(sections.versions, name, reload), aliases(sections.aliases, name, reload),
    url(sections.url, name), triggers(sections.triggers, name)]);
  await reload();
}

async function listAll(operation, params, key) {
  const out = [];
  let marker;
  do {
    const page = await call("lambda", operation, marker ? { ...params, Marker: marker } : params);
    out.push(...(page[key] || []));
    marker = page.NextMarker;
  } while (marker);
  return out;
}

async function versions(root, name, reload) {
  const list = await listAll("ListVersionsByFunction", { FunctionName: name }, "Versions");
  const description = h("input", { placeholder: "Description (optional)", "aria-label": "Version description", class: "grow" });
  const error = h("p.error", { role: "alert" });
  const publish = h("button.primary", {}, "Publish new version");
  publish.addEventListener("click", async () => {
    error.textContent = "";
    try {
      const v = await call("lambda", "PublishVersion", { FunctionName: name, Description: description.value });
      toast(`Published version ${v.Version}`);
      await reload();
    } catch (ex) { error.textContent = `${ex.code}: ${ex.message}`; }
  });
  root.replaceChildren(h("h2", {}, "Versions"), h("div.row", {}, description, publish), error,
    h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "Version"), h("th", {}, "Description"), h("th", {}, "Code SHA-256"), h("th", {}, "Last modified"))),
      h("tbody", {}, list.slice().reverse().map((v) => h("tr", {}, h("td", {}, v.Version), h("td", {}, v.Description || ""),
        h("td.mono", {}, (v.CodeSha256 || "").slice(0, 16) + "…"), h("td", {}, fmtDate(v.LastModified)))))));
}

async function aliases(root, name, reload) {
  const [list, vs] = await Promise.all([listAll("ListAliases", { FunctionName: name }, "Aliases"),
    listAll("ListVersionsByFunction", { FunctionName: name }, "Versions")]);
  const numbers = vs.map((v) => v.Version).filter((v) => v !== "$LATEST");
  const options = (selected, blank) => [blank ? h("option", { value: "" }, blank) : null,
    ...["$LATEST", ...numbers].map((v) => h("option", { value: v, selected: v === selected }, v))];
  const error = h("p.error", { role: "alert" });
  const row = (alias) => {
    const weights = (alias.RoutingConfig || {}).AdditionalVersionWeights || {};
    const [second, weight] = Object.entries(weights)[0] || ["", 0];
    const primary = h("select", { "aria-label": `${alias.Name} version` }, options(alias.FunctionVersion));
    const other = h("select", { "aria-label": `${alias.Name} second version` }, options(second, "(none)"));
    const slider = h("input", { type: "range", min: 0, max: 100, step: 1, value: Math.round(weight * 100), "aria-label": `${alias.Name} weight of the second version (%)` });
    const shown = h("span.mono", {});
    const label = () => { shown.textContent = other.value ? `${100 - slider.value}% → ${primary.value}, ${slider.value}% → ${other.value}` : `100% → ${primary.value}`; slider.disabled = !other.value; };
    for (const el of [primary, other, slider]) el.addEventListener("input", label);
    label();
    const save = async () => {
      error.textContent = "";
      const params = { FunctionName: name, Name: alias.Name, FunctionVersion: primary.value,
        RoutingConfig: { AdditionalVersionWeights: other.value ? { [other.value]: Number(slider.value) / 100 } : {} } };
      try { await call("lambda", "UpdateAlias", params); toast(`Alias ${alias.Name} saved`); }
      catch (ex) { error.textContent = `${ex.code}: ${ex.message}`; }
    };
    const remove = async () => {
      if (!(await confirmDialog(`Delete the alias ${alias.Name}?`, "Callers of the alias's ARN will get ResourceNotFoundException."))) return;
      try { await call("lambda", "DeleteAlias", { FunctionName: name, Name: alias.Name }); await reload(); }
      catch (ex) { error.textContent = `${ex.code}: ${ex.message}`; }
    };
    return h("tr", {}, h("td", {}, alias.Name), h("td", {}, primary), h("td", {}, other), h("td", {}, slider, " ", shown),
      h("td", {}, h("button", { onclick: save }, "Save"), " ", h("button.quiet", { onclick: remove, "aria-label": `Delete alias ${alias.Name}` }, "Delete")));
  };
  const newName = h("input", { placeholder: "alias name", "aria-label": "New alias name", pattern: "[a-zA-Z0-9_\\-]+" });
  const newVersion = h("select", { "aria-label": "New alias version" }, options(numbers.at(-1) || "$LATEST"));
  const create = async (e) => {
    e.preventDefault();
    error.textContent = "";
    try {
      await call("lambda", "CreateAlias", { FunctionName: name, Name: newName.value, FunctionVersion: newVersion.value });
      toast(`Alias ${newName.value} created`);
      await reload();
    } catch (ex) { error.textContent = `${ex.code}: ${ex.message}`; }
  };
  root.replaceChildren(h("h2", {}, "Aliases"),
    h("form.row", { onsubmit: create }, newName, newVersion, h("button", { type: "submit" }, "Create alias")), error,
    h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "Alias"), h("th", {}, "Version"), h("th", {}, "Weighted version"), h("th", {}, "Weight"), h("th", {}, ""))),
      h("tbody", {}, list.map(row))));
}

async function url(root, name) {
  const error = h("p.error", { role: "alert" });
  let config = null;
  try { config = await call("lambda", "GetFunctionUrlConfig", { FunctionName: name }); }
  catch (ex) { if (ex.code !== "ResourceNotFoundException") error.textContent = `${ex.code}: ${ex.message}`; }
  const auth = h("select", { "aria-label": "Auth type" }, h("option", { value: "NONE" }, "NONE (public)"), h("option", { value: "AWS_IAM" }, "AWS_IAM (signed requests)"));
  const create = async () => {
    error.textContent = "";
    try {
      await call("lambda", "CreateFunctionUrlConfig", { FunctionName: name, AuthType: auth.value });
      if (auth.value === "NONE") {  // as Lambda's console: a public URL needs the resource policy that allows it
        try {
          await call("lambda", "AddPermission", { FunctionName: name, StatementId: "FunctionURLAllowPublicAccess",
            Action: "lambda:InvokeFunctionUrl", Principal: "*", FunctionUrlAuthType: "NONE" });
        } catch (ex) { if (ex.code !== "ResourceConflictException") throw ex; }
      }
      await url(root, name);
    } catch (ex) { error.textContent = `${ex.code}: ${ex.message}`; }
  };
  const remove = async () => {
    if (!(await confirmDialog("Delete the function URL?", "Its address stops answering; a new URL gets a new address."))) return;
    try { await call("lambda", "DeleteFunctionUrlConfig", { FunctionName: name }); await url(root, name); }
    catch (ex) { error.textContent = `${ex.code}: ${ex.message}`; }
  };
  const copy = async () => {
    try { await navigator.clipboard.writeText(config.FunctionUrl); toast("URL copied"); }
    catch { toast("Copy it from the link: the browser refused the clipboard"); }
  };
  root.replaceChildren(h("h2", {}, "Function URL"), error, config
    ? h("div", {}, h("p", {}, h("a.mono", { href: config.FunctionUrl, target: "_blank", rel: "noopener noreferrer", id: "function-url" }, config.FunctionUrl),
        " ", h("span.pill", {}, config.AuthType)),
      h("div.row", {}, h("button", { onclick: copy }, "Copy"), h("a.button", { href: config.FunctionUrl, target: "_blank", rel: "noopener noreferrer" }, "Open"),
        h("button.danger", { onclick: remove }, "Delete URL")))
    : h("div.row", {}, auth, h("button.primary", { onclick: create }, "Create function URL")));
}

const RUNNING = ["Enabled", "Enabling", "Creating", "Updating"];
// what UpdateSchedule takes of what GetSchedule gives (it replaces the whole schedule)
const SCHEDULE_FIELDS = ["Name", "GroupName", "ScheduleExpression", "ScheduleExpressionTimezone", "StartDate", "EndDate",
  "Description", "FlexibleTimeWindow", "Target", "ActionAfterCompletion", "KmsKeyArn"];

async function triggers(root, name) {
  const error = h("p.error", { role: "alert" });
  const arn = (await call("lambda", "GetFunctionConfiguration", { FunctionName: name })).FunctionArn;
  let mappings = [], schedules = [];
  try { mappings = await listAll("ListEventSourceMappings", { FunctionName: name }, "EventSourceMappings"); }
  catch (ex) { error.textContent = `${ex.code}: ${ex.message}`; }
  try {  // EventBridge Scheduler's schedules whose target is this function (or one of its versions or aliases)
    let token;
    do {
      const page = await call("scheduler", "ListSchedules", token ? { NextToken: token } : {});
      schedules.push(...(page.Schedules || []).filter((s) => s.Target && (s.Target.Arn === arn || s.Target.Arn.startsWith(`${arn}:`))));
      token = page.NextToken;
    } while (token);
  } catch (ex) { error.textContent += `${ex.code}: ${ex.message}`; }
  const act = async (work) => {
    error.textContent = "";
    try { await work(); await triggers(root, name); } catch (ex) { error.textContent = `${ex.code}: ${ex.message}`; }
  };
  const toggleMapping = (m) => act(() => call("lambda", "UpdateEventSourceMapping", { UUID: m.UUID, Enabled: !RUNNING.includes(m.State) }));
  const toggleSchedule = (s) => act(async () => {
    const full = await call("scheduler", "GetSchedule", { Name: s.Name, GroupName: s.GroupName });
    const params = Object.fromEntries(SCHEDULE_FIELDS.filter((k) => full[k] !== undefined && full[k] !== null).map((k) => [k, full[k]]));
    params.State = full.State === "ENABLED" ? "DISABLED" : "ENABLED";
    await call("scheduler", "UpdateSchedule", params);
  });
  const rows = [
    ...mappings.map((m) => h("tr", {}, h("td", {}, "event source mapping"), h("td.mono", {}, m.EventSourceArn || JSON.stringify(m.SelfManagedEventSource || {})),
      h("td", {}, m.State), h("td", {}, [m.BatchSize ? `batch ${m.BatchSize}` : "", m.LastProcessingResult || ""].filter(Boolean).join(", ")),
      h("td", {}, h("button", { onclick: () => toggleMapping(m) }, RUNNING.includes(m.State) ? "Disable" : "Enable")))),
    ...schedules.map((s) => h("tr", {}, h("td", {}, "schedule"), h("td.mono", {}, `${s.GroupName}/${s.Name}`),
      h("td", {}, s.State), h("td.mono", {}, s.Target.Arn === arn ? "" : s.Target.Arn.slice(arn.length + 1)),
      h("td", {}, h("button", { "aria-label": `${s.State === "ENABLED" ? "Disable" : "Enable"} schedule ${s.Name}`, onclick: () => toggleSchedule(s) },
        s.State === "ENABLED" ? "Disable" : "Enable")))),
  ];
  root.replaceChildren(h("h2", {}, "Triggers"), error,
    rows.length ? h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "Kind"), h("th", {}, "Source"), h("th", {}, "State"), h("th", {}, "Details"), h("th", {}, ""))),
      h("tbody", {}, rows))
      : h("p.muted", {}, "No triggers: no event source mapping, no EventBridge Scheduler schedule targets this function. (Create them with the API: aws lambda create-event-source-mapping, aws scheduler create-schedule.)"));
}
