import { readFileSync } from "node:fs";
import { expandTableHeads } from "./web-table-head.ts";

/**
 * The web page's HTML documents: one layout (`web/layout.html`: head, header, navigation, API-key form)
 * around each page's `<main>` (`web/pages/*.html`), put together once at start-up, so the pages share
 * their header instead of repeating it. Still plain files, no build step.
 */
export interface WebPage {
  /** The route the page is served at; its link in the navigation is marked as the current page. */
  route: string;
  title: string;
  /** The page's ES module under /ui/. */
  script: string;
  /** The page's `<main>` element. */
  main: string;
}

/**
 * Pure: the layout with the page's title, script and main (its table heads expanded) filled in, and
 * its navigation link current.
 */
export function renderPage(layout: string, page: WebPage): string {
  const link = `<a href="${page.route}">`;
  if (layout.split(link).length !== 2)
    throw new Error(`the layout's navigation has no single link to ${page.route}`);
  const indent = /^([ \t]*)\{\{main\}\}/m.exec(layout)?.[1] ?? "";
  const main = expandTableHeads(page.main).trimEnd().replaceAll("\n", `\n${indent}`);
  return layout
    .replace(link, `<a href="${page.route}" aria-current="page">`)
    .replace("{{title}}", page.title)
    .replace("{{script}}", page.script)
    .replace("{{main}}", () => main);
}

const read = (file: string) => readFileSync(new URL(`./web/${file}`, import.meta.url), "utf8");

/** The pages the API serves, rendered from the files under web/. */
export function webPages(): Array<WebPage & { html: string }> {
  const layout = read("layout.html");
  const pages: WebPage[] = [
    { route: "/", title: "caption an image", script: "caption.js", main: read("pages/caption.html") },
    { route: "/pipeline", title: "pipeline", script: "pipeline.js", main: read("pages/pipeline.html") },
  ];
  return pages.map((page) => ({ ...page, html: renderPage(layout, page) }));
}
