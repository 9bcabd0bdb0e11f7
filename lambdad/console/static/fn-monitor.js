// The Monitor tab: CloudWatch metrics (GetMetricData) as graphs, and the function's log (FilterLogEvents with a
// filter pattern), following new lines; its REPORT lines list the recent invocations.
import { call, h, onLeave } from "./app.js";

const GRAPHS = [
  ["Invocations", [["Invocations", "Sum"]]],
  ["Errors and throttles", [["Errors", "Sum"], ["Throttles", "Sum"]]],
  ["Duration p50 / p99 (ms)", [["Duration", "p50"], ["Duration", "p99"]]],
  ["Concurrent executions (max)", [["ConcurrentExecutions", "Maximum"]]],
];

export async function show(root, fn) {
  const name = fn.Configuration.FunctionName;
  const range = h("select", { "aria-label": "Time range" }, [["1 hour", 3600], ["3 hours", 10800], ["24 hours", 86400]].map(([l, s]) => h("option", { value: s }, l)));
  const charts = h("div.grid2");
  const chartError = h("p.error", { role: "alert" });
  const drawCharts = async () => {
    const span = Number(range.value), period = span <= 10800 ? 60 : 300;
    const end = Math.ceil(Date.now() / 1000 / period) * period, start = end - span;
    const queries = [];
    GRAPHS.forEach(([, series], g) => series.forEach(([metric, stat], s) => queries.push({
      Id: `g${g}s${s}`, MetricStat: { Metric: { Namespace: "AWS/Lambda", MetricName: metric, Dimensions: [{ Name: "FunctionName", Value: name }] }, Period: period, Stat: stat } })));
    try {
      const out = await call("monitoring", "GetMetricData", { StartTime: start, EndTime: end, MetricDataQueries: queries, ScanBy: "TimestampAscending" });
      const byId = Object.fromEntries((out.MetricDataResults || []).map((r) => [r.Id, r]));
      chartError.textContent = "";
      charts.replaceChildren(...GRAPHS.map(([title, series], g) => chart(title, series.map(([, stat], s) =>
        filled(byId[`g${g}s${s}`] || { Timestamps: [], Values: [] }, stat, start, end, period)), start, end)));
    } catch (ex) { chartError.textContent = `Metrics: ${ex.message}`; }
  };
  range.addEventListener("change", drawCharts);

  const pattern = h("input", { type: "search", placeholder: 'Filter pattern: ERROR, "Task timed out", { $.level = "ERROR" }', "aria-label": "Filter pattern", class: "grow" });
  const follow = h("input", { type: "checkbox", checked: true, "aria-label": "Follow new lines" });
  const logs = h("pre.logs", { tabindex: 0, "aria-label": "Log events" });
  const logError = h("p.error", { role: "alert" });
  const invocations = h("tbody");
  let since = Date.now() - 3600 * 1000, seen = new Set(), lines = [], reports = [], timer = null, busy = false;
  const group = (fn.Configuration.LoggingConfig || {}).LogGroup || `/aws/lambda/${name}`;
  const fetchLogs = async (reset) => {
    if (busy) return;
    busy = true;
    try {
      if (reset) { since = Date.now() - 3600 * 1000; seen = new Set(); lines = []; }
      let token, pages = 0;
      do {
        const params = { logGroupName: group, startTime: since, limit: 1000 };
        if (pattern.value.trim()) params.filterPattern = pattern.value.trim();
        if (token) params.nextToken = token;
        const out = await call("logs", "FilterLogEvents", params);
        for (const e of out.events || []) if (!seen.has(e.eventId)) { seen.add(e.eventId); lines.push(e); }
        token = out.nextToken;
      } while (token && ++pages < 5);
      lines.sort((a, b) => a.timestamp - b.timestamp);
      if (lines.length > 5000) lines = lines.slice(-5000);
      if (lines.length) since = Math.max(since, lines[lines.length - 1].timestamp - 2000);  // late arrivals: deduped by id
      let found = [], next, more = 0;  // the newest 20 REPORT lines of the last hour, whatever the filter
      do {
        const recent = await call("logs", "FilterLogEvents", { logGroupName: group, startTime: Date.now() - 3600 * 1000,
          filterPattern: '"REPORT RequestId"', ...(next ? { nextToken: next } : {}) });
        found = found.concat(recent.events || []).slice(-20);
        next = recent.nextToken;
      } while (next && ++more < 5);
      reports = found.reverse();
      logError.textContent = "";
      draw();
    } catch (ex) {
      logError.textContent = ex.code === "ResourceNotFoundException" ? "No log yet: the function has not run." : ex.message;
    } finally { busy = false; }
  };
  const draw = () => {
    const atEnd = logs.scrollTop + logs.clientHeight >= logs.scrollHeight - 4;
    logs.replaceChildren(...lines.map((e) => h("div", {}, h("span.ts", {}, new Date(e.timestamp).toISOString().slice(11, 23) + " "), e.message.replace(/\n$/, ""))));
    if (atEnd || follow.checked) logs.scrollTop = logs.scrollHeight;
    invocations.replaceChildren(...reports.map((e) => {
      const m = /RequestId: (\S+)\s+Duration: ([\d.]+) ms.*?Max Memory Used: (\d+) MB(?:.*Init Duration: ([\d.]+) ms)?(?:.*Status: (\w+))?/.exec(e.message) || [];
      return h("tr", {}, h("td", {}, new Date(e.timestamp).toLocaleTimeString()),
        h("td.mono", {}, h("a", { href: "#", onclick: (ev) => { ev.preventDefault(); pattern.value = `"${m[1]}"`; fetchLogs(true); } }, m[1] || "")),
        h("td.num", {}, m[2] || ""), h("td.num", {}, m[3] || ""), h("td", {}, m[4] ? "cold" : ""), h("td", {}, m[5] || ""));
    }));
  };
  let debounce;
  pattern.addEventListener("input", () => { clearTimeout(debounce); debounce = setTimeout(() => fetchLogs(true), 300); });
  const tick = () => { if (follow.checked && document.visibilityState === "visible") { fetchLogs(false); drawCharts(); } };
  timer = setInterval(tick, 3000);
  onLeave(() => clearInterval(timer));

  root.append(
    h("div.row", {}, h("h2.grow", {}, "Metrics"), range), chartError, charts,
    h("h2", {}, "Recent invocations"),
    h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "Time"), h("th", {}, "Request id (shows its lines)"), h("th.num", {}, "Duration (ms)"), h("th.num", {}, "Max memory (MB)"), h("th", {}, "Start"), h("th", {}, "Status"))), invocations),
    h("div.row", {}, h("h2.grow", {}, "Log"), h("label.row", {}, follow, "Follow")),
    h("div.row", {}, pattern, h("button", { onclick: () => { pattern.value = ""; fetchLogs(true); } }, "Clear")),
    logError, logs);
  await Promise.all([drawCharts(), fetchLogs(true)]);
}

// a count's periods without data were zero: filled so that the graph is a line (a percentile's stay gaps)
function filled(result, stat, start, end, period) {
  const points = new Map((result.Timestamps || []).map((t, k) => [Math.round(Date.parse(t) / 1000), result.Values[k]]));
  if (stat.startsWith("p")) return { Points: [...points].sort((a, b) => a[0] - b[0]) };
  const out = [];
  for (let t = start; t < end; t += period) out.push([t, points.get(t) ?? 0]);
  return { Points: out };
}

function chart(title, series, start, end) {
  const W = 600, H = 150, L = 40, B = 18;
  const all = series.flatMap((s) => s.Points.map((p) => p[1]));
  const max = Math.max(1, ...all);
  const x = (t) => L + ((t - start) / (end - start)) * (W - L - 4);
  const y = (v) => H - B - (v / max) * (H - B - 8);
  const ns = "http://www.w3.org/2000/svg";
  const el = (tag, attrs, text) => { const e = document.createElementNS(ns, tag); for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v); if (text !== undefined) e.textContent = text; return e; };
  const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": `${title}: ${all.length ? `latest ${series.map((s) => (s.Points.at(-1) || [0, 0])[1]).join(" / ")}` : "no data"}` });
  svg.append(el("line", { class: "axis", x1: L, y1: H - B, x2: W, y2: H - B }), el("line", { class: "axis", x1: L, y1: 4, x2: L, y2: H - B }),
    el("text", { x: 2, y: 12 }, fmt(max)), el("text", { x: 2, y: H - B }, "0"),
    el("text", { x: L, y: H - 2 }, new Date(start * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })),
    el("text", { x: W - 2, y: H - 2, "text-anchor": "end" }, new Date(end * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })));
  series.forEach((s, i) => {
    const points = s.Points;
    if (!points.length) return;
    const d = points.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
    svg.append(el("polyline", { class: i ? "line2" : "line", points: points.length > 1 ? d : `${d} ${(x(points[0][0]) + 2).toFixed(1)},${y(points[0][1]).toFixed(1)}` }));
    for (const [t, v] of points) if (v) svg.append(el("circle", { cx: x(t).toFixed(1), cy: y(v).toFixed(1), r: 2, class: i ? "line2" : "line" }));
  });
  const total = series.map((s) => s.Points.reduce((a, p) => a + p[1], 0));
  return h("div.chart", { "data-metric": title }, h("h3", {}, title, h("span.muted", {}, `  ${series.length > 1 ? "" : `(${fmt(total[0])} in range)`}`)), svg);
}

const fmt = (v) => (v >= 1000 ? `${(v / 1000).toFixed(1)}k` : Number.isInteger(v) ? String(v) : v.toFixed(1));
