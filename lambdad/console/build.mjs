// Bundles editor-src.mjs (CodeMirror 6) into static/editor.js: `npm ci && npm run build` in lambdad/console.
import { build } from "esbuild";

await build({
  entryPoints: ["editor-src.mjs"],
  bundle: true,
  format: "esm",
  minify: true,
  target: "es2020",
  legalComments: "eof",
  outfile: "static/editor.js",
});
