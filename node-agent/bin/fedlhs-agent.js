#!/usr/bin/env node
// The `fedlhs-agent` command npm installs from this checkout: runs the built program, or says how
// to build it (`npm ci` builds through the root prepare script; `npm run build` does too).
import { existsSync } from 'node:fs';

const main = new URL('../dist/main.js', import.meta.url);
if (!existsSync(main)) {
  process.stderr.write('fedlhs-agent: not built yet: run `npm run build` in the fedlhs checkout first\n');
  process.exit(2);
}
await import(main.href);
