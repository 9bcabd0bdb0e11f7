// The Code tab: the function's files in CodeMirror; save = UpdateFunctionCode (through /console/api/code).
import { api, h, toast } from "./app.js";

export async function show(root, fn) {
  const name = fn.Configuration.FunctionName;
  const status = h("span.muted", { role: "status" });
  const error = h("p.error", { role: "alert" });
  const saveButton = h("button.primary", { disabled: true }, "Save (Ctrl+S)");
  root.append(h("p.muted", {}, "Loading the code…"));
  const code = await api(`code/${encodeURIComponent(name)}`);
  root.replaceChildren();
  root.append(h("p.muted", {}, "Handler: ", h("code", {}, code.Handler || ""), " — change it in Configuration."));
  if (!code.editable) {
    root.append(h("p", {}, code.reason), h("ul", {}, code.files.map((f) => h("li.mono", {}, `${f.path} (${f.size} bytes)`))));
    return;
  }
  let revision = code.RevisionId;
  const texts = new Map(code.files.filter((f) => f.text !== undefined).map((f) => [f.path, f.text]));
  const saved = new Map(texts);
  const removed = new Set();
  const others = code.files.filter((f) => f.text === undefined);
  const first = [code.Handler && [...texts.keys()].find((p) => p.startsWith(code.Handler.split(".")[0] + ".")), ...texts.keys()].find(Boolean);
  let current = first || null;
  const list = h("nav.files", { "aria-label": "files" });
  const holder = h("div#editor");
  const newName = h("input", { placeholder: "new_file.py", "aria-label": "New file name", size: 14 });
  root.append(h("div.row", {}, saveButton, status, h("span.grow"),
      h("form.row", { onsubmit: (e) => { e.preventDefault(); addFile(); } }, newName, h("button", { type: "submit" }, "New file"))),
    error, h("div.editor-wrap", {}, list, holder));

  const dirty = () => [...texts].some(([p, t]) => saved.get(p) !== t) || removed.size > 0;
  const refresh = () => {
    saveButton.disabled = !dirty();
    status.textContent = dirty() ? "Unsaved changes" : "";
    list.replaceChildren(...[...texts.keys()].sort().map((p) => h("div.row", {},
      h("button.grow", { "aria-current": p === current ? "true" : "false", onclick: () => open(p) }, p + (saved.get(p) !== texts.get(p) ? " •" : "")),
      h("button.quiet", { "aria-label": `Remove ${p}`, title: "Remove", onclick: () => removeFile(p) }, "×"))),
    ...others.map((f) => h("div.binary", { title: "not shown: binary or large" }, f.path)));
  };
  const { createEditor } = await import("./editor.js");
  const editor = createEditor(holder, {
    text: current ? texts.get(current) : "", path: current || "",
    onChange: () => { if (current) { texts.set(current, editor.getText()); refresh(); } },
    onSave: () => save(),
  });
  function open(path) {
    if (current) texts.set(current, editor.getText());
    current = path;
    editor.setText(texts.get(path), path);
    refresh();
    editor.focus();
  }
  function addFile() {
    const path = newName.value.trim();
    if (!path || texts.has(path)) return;
    texts.set(path, "");
    removed.delete(path);
    newName.value = "";
    open(path);
  }
  function removeFile(path) {
    texts.delete(path);
    if (saved.has(path)) removed.add(path);
    if (current === path) { current = [...texts.keys()][0] || null; editor.setText(current ? texts.get(current) : "", current || ""); }
    refresh();
  }
  async function save() {
    if (!dirty()) return;
    error.textContent = "";
    status.textContent = "Saving…";
    const changed = {};
    for (const [p, t] of texts) if (saved.get(p) !== t) changed[p] = t;
    try {
      const out = await api(`code/${encodeURIComponent(name)}`, { method: "POST", body: { Changed: changed, Removed: [...removed], RevisionId: revision } });
      revision = out.RevisionId;
      for (const [p, t] of Object.entries(changed)) saved.set(p, t);
      for (const p of removed) saved.delete(p);
      removed.clear();
      refresh();
      status.textContent = `Saved (${out.CodeSize} bytes, ${out.CodeSha256.slice(0, 12)}…)`;
      toast("Code saved");
    } catch (ex) {
      refresh();
      error.textContent = `${ex.code || "Error"}: ${ex.message}`;
    }
  }
  saveButton.addEventListener("click", save);
  refresh();
  editor.focus();
}
