import { describe, expect, it } from "vitest";
import { expandTableHeads } from "./web-table-head.ts";

describe("expandTableHeads", () => {
  it("writes a head row of column headers at the placeholder's indentation", () => {
    const html = `<table id="runs">\n  {{columns: run | val loss | BLEU-4}}\n  <tbody></tbody>\n</table>`;
    expect(expandTableHeads(html)).toBe(`<table id="runs">
  <thead>
    <tr>
      <th scope="col">run</th>
      <th scope="col">val loss</th>
      <th scope="col">BLEU-4</th>
    </tr>
  </thead>
  <tbody></tbody>
</table>`);
  });

  it("leaves a page without placeholders as it is, and refuses an empty column name", () => {
    expect(expandTableHeads("<p>{{title}}</p>")).toBe("<p>{{title}}</p>");
    expect(() => expandTableHeads("  {{columns: a || b}}")).toThrow(/empty column name/);
  });
});
