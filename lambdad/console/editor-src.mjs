// The console's code editor: CodeMirror 6 with the languages of Lambda's runtimes, bundled by build.mjs into
// static/editor.js (one ES module, committed, so `pip install .` needs no build step).
import { EditorView, basicSetup } from "codemirror";
import { EditorState, Compartment } from "@codemirror/state";
import { keymap } from "@codemirror/view";
import { indentWithTab } from "@codemirror/commands";
import { python } from "@codemirror/lang-python";
import { javascript } from "@codemirror/lang-javascript";
import { json } from "@codemirror/lang-json";
import { oneDark } from "@codemirror/theme-one-dark";

function languageOf(path) {
  if (path.endsWith(".py")) return python();
  if (/\.(m|c)?(j|t)sx?$/.test(path)) return javascript({ typescript: /\.(m|c)?tsx?$/.test(path) });
  if (path.endsWith(".json")) return json();
  return [];
}

// Make an editor in `parent` for `text` of the file `path`; `onChange()` is told of every edit, `onSave()` of
// Ctrl/Cmd-S. Returns { getText(), setText(text, path), focus(), destroy() }.
export function createEditor(parent, { text, path, onChange, onSave }) {
  const language = new Compartment();
  const theme = new Compartment();
  const dark = window.matchMedia("(prefers-color-scheme: dark)");
  const view = new EditorView({
    parent,
    state: EditorState.create({
      doc: text,
      extensions: [
        basicSetup,
        keymap.of([indentWithTab, { key: "Mod-s", preventDefault: true, run: () => { onSave && onSave(); return true; } }]),
        language.of(languageOf(path)),
        theme.of(dark.matches ? oneDark : []),
        EditorView.updateListener.of((u) => { if (u.docChanged && onChange) onChange(); }),
      ],
    }),
  });
  const follow = (e) => view.dispatch({ effects: theme.reconfigure(e.matches ? oneDark : []) });
  dark.addEventListener("change", follow);
  return {
    view,
    getText: () => view.state.doc.toString(),
    setText(newText, newPath) {
      view.dispatch({
        changes: { from: 0, to: view.state.doc.length, insert: newText },
        effects: language.reconfigure(languageOf(newPath)),
      });
    },
    focus: () => view.focus(),
    destroy() { dark.removeEventListener("change", follow); view.destroy(); },
  };
}
