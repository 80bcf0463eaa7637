// Runs after `npm ci` / `npm install` in the checkout: builds the workspaces so that the
// commands npm links (npx fedlhs-coordinator, fedlhs-agent, fedlhs-simulate) work at once.
// Skipped, with a note, where the sources are not there yet (a Docker layer that installs
// dependencies from the package manifests alone builds later, explicitly).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

if (!existsSync('tsconfig.json') || !existsSync('packages/core/src')) {
  process.stdout.write('fedlhs prepare: sources not present yet; skipping the build\n');
  process.exit(0);
}
const r = spawnSync(process.execPath, ['node_modules/typescript/bin/tsc', '-b'], { stdio: 'inherit' });
process.exit(r.status ?? 1);
