// Regenerates src/generated from proto/ with proto-loader-gen-types, using the very options
// the runtime loader passes to loadSync (src/loader-options.json), so types and runtime agree.
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const pkg = join(dirname(fileURLToPath(import.meta.url)), '..');
const protoRoot = join(pkg, '..', '..', 'proto');
const outDir = process.argv[2] ?? join(pkg, 'src', 'generated');
const options = JSON.parse(readFileSync(join(pkg, 'src', 'loader-options.json'), 'utf8'));

const flags = [
  `--longs=${options.longs}`,
  `--enums=${options.enums}`,
  ...(options.defaults ? ['--defaults'] : []),
  ...(options.oneofs ? ['--oneofs'] : []),
  ...(options.keepCase ? ['--keepCase'] : []),
  '--grpcLib=@grpc/grpc-js',
  '--includeComments',
  '--importFileExtension=.js',
  `--outDir=${outDir}`,
  `--includeDirs=${protoRoot}`,
];
rmSync(outDir, { recursive: true, force: true });
const bin = join(pkg, '..', '..', 'node_modules', '.bin', 'proto-loader-gen-types');
execFileSync(bin, ['fedlhs/v1/enrolment.proto', 'fedlhs/v1/federation.proto', ...flags], { stdio: 'inherit' });
