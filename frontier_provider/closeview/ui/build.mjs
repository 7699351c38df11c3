// Bundles close-view.js with uPlot into ../static/close-view.js and ../static/close-view.css, and
// copies uPlot's licence beside them. Run with `npm ci && npm run build` (see the package docstring).
import { copyFileSync, readFileSync } from "node:fs";
import { build } from "esbuild";

const uplot = JSON.parse(readFileSync("node_modules/uplot/package.json", "utf8"));
const banner = `/* Frontier Close view. Bundles uPlot ${uplot.version} (${uplot.license}, see uPlot-LICENSE.txt). */`;

await build({
  entryPoints: ["close-view.js"],
  bundle: true,
  format: "iife",
  target: ["es2022"],
  minify: true,
  legalComments: "none",
  charset: "utf8",
  banner: { js: banner, css: banner },
  outdir: "../static",
  entryNames: "[name]",
  logLevel: "info",
});
copyFileSync("node_modules/uplot/LICENSE", "../static/uPlot-LICENSE.txt");
