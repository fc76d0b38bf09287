// Rewrites the options table of docs/operations.md from the option table (src/config/option-table.ts), between
// its two marker comments. Runs on the build: `npm run docs:options`.
import { readFileSync, writeFileSync } from 'node:fs';
import { optionsMarkdownTable } from '../dist/src/config/index.js';

const file = new URL('../docs/operations.md', import.meta.url);
const text = readFileSync(file, 'utf8');
const begin = text.indexOf('<!-- options table:');
const end = text.indexOf('<!-- end of options table -->');
if (begin < 0 || end < begin) throw new Error('docs/operations.md: the options table markers are missing');
const afterBegin = text.indexOf('\n', begin) + 1;
writeFileSync(file, text.slice(0, afterBegin) + optionsMarkdownTable() + text.slice(end));
