// Writes generated/<name>.ts for every dashboards/<name>.json: the JSON text, unchanged, as an
// object literal of type CamfleetDashboard (see grafana.ts). A literal, not a JSON import: tsc
// widens imported JSON and skips the excess-property check, so a misspelt key would pass.
// `node generate.mjs [DIR]` reads DIR instead of dashboards/ (the tests check a broken copy).
// Line N of dashboards/<name>.json is line N + 1 of generated/<name>.ts.
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const dashboards = process.argv[2] ?? join(here, '..', '..', 'dashboards');
const out = join(here, 'generated');

rmSync(out, { recursive: true, force: true });
mkdirSync(out);
const names = readdirSync(dashboards).filter((name) => name.endsWith('.json')).sort();
if (names.length === 0) {
  console.error(`no dashboards found in ${dashboards}`);
  process.exit(1);
}
for (const name of names) {
  const text = readFileSync(join(dashboards, name), 'utf8');
  JSON.parse(text); // a JSON syntax error is reported as such, not as a TypeScript one
  const header = "import type { CamfleetDashboard } from '../grafana.js'; export const dashboard: CamfleetDashboard =";
  writeFileSync(join(out, `${basename(name, '.json')}.ts`), `${header}\n${text.trimEnd()};\n`);
}
console.log(`generated ${names.length} dashboard(s): ${names.join(', ')}`);
