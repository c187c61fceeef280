/**
 * A page's table heads written as one line, `{{columns: dataset | images | ETA}}`, expanded to the
 * `<thead>` row of `<th scope="col">` cells at that line's indentation: the pipeline page's three
 * tables had fourteen lines of identical markup around their column names.
 */
export function expandTableHeads(html: string): string {
  return html.replace(/^([ \t]*)\{\{columns:([^}]*)\}\}$/gm, (_line, indent: string, list: string) => {
    const columns = list.split("|").map((c) => c.trim());
    if (columns.some((c) => c === "")) throw new Error(`empty column name in {{columns:${list}}}`);
    return [
      `${indent}<thead>`,
      `${indent}  <tr>`,
      ...columns.map((c) => `${indent}    <th scope="col">${c}</th>`),
      `${indent}  </tr>`,
      `${indent}</thead>`,
    ].join("\n");
  });
}
