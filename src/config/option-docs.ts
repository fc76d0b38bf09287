/**
 * The options table of docs/operations.md ("Configuration"), written from the option table: test/docs.test.ts
 * checks the page holds it, and `npm run docs:options` rewrites it there after a row changes.
 */
import { flagName, envName } from './option-names.js';
import { OPTION_KEYS, OPTION_TABLE } from './option-table.js';

/** The default as the docs show it: the row's own text, else the value in code style ("empty" for ""). */
function defaultCell(value: unknown, text: string | undefined): string {
  if (text !== undefined) return text;
  return value === '' ? 'empty' : `\`${String(value)}\``;
}

/** The Markdown table, header included, one line per option in table order, ending with a newline. */
export function optionsMarkdownTable(): string {
  const lines = ['| option | flag | environment | default | meaning |', '|---|---|---|---|---|'];
  for (const key of OPTION_KEYS) {
    const row = OPTION_TABLE[key];
    lines.push(`| ${key} | \`${flagName(key)}\` | \`${envName(key)}\` | ${defaultCell(row.default, row.defaultDoc)} | ${row.doc} |`);
  }
  return `${lines.join('\n')}\n`;
}
