// Renders the ```mermaid blocks of docs/*.md to SVG, or checks that the
// committed SVGs are current. Run from the Makefile:
//
//	node scripts/mermaid/diagrams.mjs render   (make diagrams)
//	node scripts/mermaid/diagrams.mjs check    (make diagram-check)
//
// Block n of docs/<chapter>.md becomes docs/diagrams/<chapter>-<n>.svg, and
// the line right below the block links to it. docs/diagrams/manifest holds
// the sha256 of each block's source, and the renderer's versions: SVG bytes
// depend on the fonts of the machine that drew them, so the check compares
// sources, not pictures. Both modes render every block, in one browser, so
// that a block that does not parse or draw fails either of them.
//
// The Mermaid CLI and puppeteer come from MERMAID_DIR (default
// .bin/mermaid, where make mermaid-tools installs them with npm ci);
// scripts/mermaid/puppeteer.json says which browser to start.

import { createHash } from "node:crypto";
import { createRequire } from "node:module";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "..", "..");
const docs = path.join(root, "docs");
const outDir = path.join(docs, "diagrams");
const manifestPath = path.join(outDir, "manifest");
const modDir = path.resolve(process.env.MERMAID_DIR || path.join(root, ".bin", "mermaid"));
// How many diagrams render at once, each in a page of the one browser.
const pages = Math.max(1, Number(process.env.MERMAID_PAGES) || 4);

// What every diagram is drawn with. Arial's metrics are what Debian's
// Liberation Sans has too, so the text fits its boxes on machines with
// either; no font is embedded, which keeps each SVG a few tens of KiB.
const renderOptions = {
  backgroundColor: "white",
  fontEmbed: false,
  mermaidConfig: { theme: "default", fontFamily: "arial, sans-serif" },
};

// blocks returns the ```mermaid blocks of one Markdown file: their source,
// the line of the opening fence, and the line after the closing one. A
// fence of four backticks (an example of a block) hides what it holds.
function blocks(text) {
  const lines = text.split("\n");
  const found = [];
  let fence = null; // the open fence: its character run, and whether it is mermaid
  let start = 0;
  let body = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (fence === null) {
      const m = /^(`{3,}|~{3,})\s*([^\s`]*)/.exec(line);
      if (m) {
        fence = { run: m[1], mermaid: m[2] === "mermaid" };
        start = i;
        body = [];
      }
      continue;
    }
    const close = new RegExp(`^${fence.run[0]}{${fence.run.length},}\\s*$`);
    if (close.test(line)) {
      if (fence.mermaid) {
        found.push({ source: body.join("\n") + "\n", open: start, after: i + 1 });
      }
      fence = null;
      continue;
    }
    body.push(line);
  }
  return found;
}

function chapters() {
  return fs
    .readdirSync(docs)
    .filter((f) => f.endsWith(".md"))
    .sort()
    .map((f) => {
      const file = path.join(docs, f);
      const text = fs.readFileSync(file, "utf8");
      const name = f.slice(0, -3);
      const found = blocks(text).map((b, i) => ({
        ...b,
        chapter: f,
        svg: `${name}-${i + 1}.svg`,
        sha: createHash("sha256").update(b.source).digest("hex"),
      }));
      return { file, text, found };
    });
}

// linkLine is the line below a block: where its SVG is, for a reader whose
// Markdown viewer does not draw Mermaid.
function linkLine(b) {
  return `<sub>SVG: [diagrams/${b.svg}](diagrams/${b.svg})</sub>`;
}

function isLinkLine(line) {
  return /^<sub>SVG: \[diagrams\/[^\]]*\]\(diagrams\/[^)]*\)<\/sub>\s*$/.test(line);
}

// withLinks returns a chapter's text with the link line below each block,
// added or corrected.
function withLinks(text, found) {
  const lines = text.split("\n");
  // From the last block up, so that earlier line numbers stay right.
  for (const b of [...found].reverse()) {
    if (b.after < lines.length && isLinkLine(lines[b.after])) {
      lines[b.after] = linkLine(b);
    } else {
      const add = [linkLine(b)];
      if (b.after < lines.length && lines[b.after].trim() !== "") add.push("");
      lines.splice(b.after, 0, ...add);
    }
  }
  return lines.join("\n");
}

function versions() {
  const v = (p) => JSON.parse(fs.readFileSync(path.join(modDir, "node_modules", p, "package.json"), "utf8")).version;
  return `@mermaid-js/mermaid-cli ${v("@mermaid-js/mermaid-cli")}, mermaid ${v("mermaid")}, puppeteer ${v("puppeteer")}`;
}

function manifest(all) {
  const head = [
    "# The diagrams of docs/*.md: written by make diagrams, compared by make diagram-check.",
    `# renderer: ${versions()}`,
    `# options: ${JSON.stringify(renderOptions)}`,
    "# sha256 of the block's source, and its SVG:",
  ];
  return [...head, ...all.map((b) => `${b.sha}  ${b.svg}`)].join("\n") + "\n";
}

// render draws every block in one browser. It returns the SVGs by name and
// a message for each block that failed.
async function render(all) {
  const require = createRequire(path.join(modDir, "package.json"));
  const cli = await import(pathToFileURL(require.resolve("@mermaid-js/mermaid-cli")).href);
  const puppeteer = require("puppeteer");
  const launch = JSON.parse(fs.readFileSync(path.join(here, "puppeteer.json"), "utf8"));
  if (process.env.CHROMIUM) launch.executablePath = process.env.CHROMIUM;
  const browser = await puppeteer.launch(launch);
  const svgs = new Map();
  const failures = [];
  // A few pages at once: each spends much of its time loading Mermaid.
  const queue = [...all];
  const worker = async () => {
    for (let b = queue.shift(); b !== undefined; b = queue.shift()) {
      try {
        const { data } = await cli.renderMermaid(browser, b.source, "svg", renderOptions);
        svgs.set(b.svg, Buffer.from(data));
      } catch (err) {
        const first = String(err?.message ?? err).split("\n").slice(0, 4).join("\n    ");
        failures.push(`docs/${b.chapter}:${b.open + 1}: the block does not render (${b.svg}):\n    ${first}`);
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: pages }, worker));
  } finally {
    await browser.close();
  }
  return { svgs, failures };
}

function committedSVGs() {
  if (!fs.existsSync(outDir)) return [];
  return fs.readdirSync(outDir).filter((f) => f.endsWith(".svg")).sort();
}

async function main() {
  const mode = process.argv[2];
  if (mode !== "render" && mode !== "check") {
    console.error("usage: diagrams.mjs render|check");
    process.exit(2);
  }
  const start = Date.now();
  const docsNow = chapters();
  const all = docsNow.flatMap((c) => c.found);
  const { svgs, failures } = await render(all);
  if (failures.length > 0) {
    failures.sort();
    for (const f of failures) console.error(f);
    console.error(`${mode === "check" ? "diagram-check" : "diagrams"}: ${failures.length} of ${all.length} blocks do not render`);
    process.exit(1);
  }
  const want = manifest(all);
  const names = new Set(all.map((b) => b.svg));

  if (mode === "render") {
    fs.mkdirSync(outDir, { recursive: true });
    const before = fs.existsSync(manifestPath) ? fs.readFileSync(manifestPath, "utf8") : "";
    const sameRenderer = before.split("\n").slice(0, 3).join("\n") === want.split("\n").slice(0, 3).join("\n");
    const had = new Set(sameRenderer ? before.split("\n").filter((l) => /^[0-9a-f]{64}  /.test(l)) : []);
    let written = 0;
    for (const b of all) {
      // An SVG whose block and renderer did not change is left as it is:
      // another machine's fonts would change its bytes for nothing.
      const file = path.join(outDir, b.svg);
      if (had.has(`${b.sha}  ${b.svg}`) && fs.existsSync(file)) continue;
      fs.writeFileSync(file, svgs.get(b.svg));
      written++;
    }
    let removed = 0;
    for (const f of committedSVGs()) {
      if (!names.has(f)) {
        fs.rmSync(path.join(outDir, f));
        removed++;
      }
    }
    fs.writeFileSync(manifestPath, want);
    let linked = 0;
    for (const c of docsNow) {
      const text = withLinks(c.text, c.found);
      if (text !== c.text) {
        fs.writeFileSync(c.file, text);
        linked++;
      }
    }
    console.log(
      `diagrams: ${all.length} blocks render; ${written} SVGs written, ${removed} removed, ` +
        `${linked} chapters relinked, in ${((Date.now() - start) / 1000).toFixed(1)} s`,
    );
    return;
  }

  const problems = [];
  const have = fs.existsSync(manifestPath) ? fs.readFileSync(manifestPath, "utf8") : "";
  if (have !== want) {
    const h = new Set(have.split("\n"));
    const w = new Set(want.split("\n"));
    const stale = [...w].filter((l) => l !== "" && !h.has(l));
    const gone = [...h].filter((l) => l !== "" && !w.has(l));
    problems.push(
      "stale: docs/diagrams/manifest does not match the blocks of docs/*.md" +
        stale.map((l) => `\n    want: ${l}`).join("") +
        gone.map((l) => `\n    have: ${l}`).join(""),
    );
  }
  for (const b of all) {
    if (!fs.existsSync(path.join(outDir, b.svg))) problems.push(`missing: docs/diagrams/${b.svg} (docs/${b.chapter}:${b.open + 1})`);
  }
  for (const f of committedSVGs()) {
    if (!names.has(f)) problems.push(`left over: docs/diagrams/${f}, whose block is gone`);
  }
  for (const c of docsNow) {
    const lines = c.text.split("\n");
    for (const b of c.found) {
      if (lines[b.after] !== linkLine(b)) {
        problems.push(`docs/${b.chapter}:${b.after + 1}: want the line "${linkLine(b)}" below the block`);
      }
    }
  }
  if (problems.length > 0) {
    for (const p of problems) console.error(p);
    console.error("diagram-check: the diagrams are stale (run make diagrams)");
    process.exit(1);
  }
  console.log(`diagram-check: ${all.length} blocks render and docs/diagrams/ is up to date (${((Date.now() - start) / 1000).toFixed(1)} s)`);
}

main().catch((err) => {
  console.error(err?.stack ?? err);
  process.exit(1);
});
