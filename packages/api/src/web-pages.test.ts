import { describe, expect, it } from "vitest";
import { renderPage, webPages } from "./web-pages.ts";

const LAYOUT = `<title>capflow · {{title}}</title><script src="/ui/{{script}}"></script>
<nav><a href="/">Caption</a><a href="/pipeline">Pipeline</a></nav>
  {{main}}
`;

describe("renderPage", () => {
  it("fills in the title, script and main, and marks only the page's own link as current", () => {
    const html = renderPage(LAYOUT, {
      route: "/pipeline",
      title: "pipeline",
      script: "pipeline.js",
      main: "<main>\n  <h1>Pipeline</h1>\n</main>\n",
    });
    expect(html).toBe(`<title>capflow · pipeline</title><script src="/ui/pipeline.js"></script>
<nav><a href="/">Caption</a><a href="/pipeline" aria-current="page">Pipeline</a></nav>
  <main>
    <h1>Pipeline</h1>
  </main>
`);
  });

  it("keeps $ patterns in the page text as they are", () => {
    const html = renderPage(LAYOUT, { route: "/", title: "t", script: "s.js", main: "<main>$& $1</main>" });
    expect(html).toContain("<main>$& $1</main>");
  });

  it("refuses a page whose route has no link in the navigation", () => {
    expect(() => renderPage(LAYOUT, { route: "/nowhere", title: "t", script: "s.js", main: "" })).toThrow(
      /no single link to \/nowhere/,
    );
  });
});

describe("webPages", () => {
  it("renders every page from web/ as a whole document with the shared header and its own main", () => {
    const pages = webPages();
    expect(pages.map((p) => p.route)).toEqual(["/", "/pipeline"]);
    for (const page of pages) {
      expect(page.html).toMatch(/^<!doctype html>/);
      expect(page.html).not.toContain("{{");
      expect(page.html.match(/aria-current="page"/g)).toHaveLength(1);
      expect(page.html).toContain(`<a href="${page.route}" aria-current="page">`);
      expect(page.html).toContain('<form id="key-form"');
      expect(page.html).toContain(`<script type="module" src="/ui/${page.script}">`);
    }
    expect(pages[0]!.html).toContain("<h1>Caption an image</h1>");
    expect(pages[1]!.html).toContain("<h1>Pipeline</h1>");
  });
});
