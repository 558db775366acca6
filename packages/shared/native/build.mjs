// Builds the optional native addon (node-gyp rebuild, Release) and prints one
// line: built, or why not. Always exits 0: without a compiler the project
// still installs and runs on its JavaScript/WASM kernels.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const log = join(here, 'build', 'build.log');
const prefix = join(dirname(process.execPath), '..');

// node-gyp ships inside npm; no download needed.
function findNodeGyp() {
  const candidates = [
    process.env.npm_config_node_gyp,
    join(prefix, 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
    join(dirname(process.execPath), 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  ];
  if (process.env.npm_execpath) candidates.push(join(dirname(process.env.npm_execpath), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  return candidates.find((p) => p && existsSync(p));
}

// The most telling line of a failed node-gyp run.
function reason(output, status) {
  const lines = output.split('\n');
  const stack = lines.find((l) => l.includes('gyp ERR! stack Error:'));
  const tool = lines.find((l) => !l.startsWith('gyp info') && /: (fatal )?error:|not found|No such file/i.test(l));
  return (tool ?? stack?.replace(/.*stack Error: /, '') ?? `node-gyp exited with ${status}`).trim();
}

function build() {
  const nodeGyp = findNodeGyp();
  if (!nodeGyp) return 'not built: node-gyp not found (it ships with npm)';
  const args = [nodeGyp, 'rebuild', '--release', '--jobs=max'];
  // Headers installed next to node (distribution packages) spare node-gyp a download.
  if (existsSync(join(prefix, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${prefix}`);
  const started = Date.now();
  const r = spawnSync(process.execPath, args, { cwd: here, encoding: 'utf8', timeout: 10 * 60_000 });
  mkdirSync(dirname(log), { recursive: true });
  writeFileSync(log, `${r.stdout ?? ''}${r.stderr ?? ''}`);
  if (r.error || r.status !== 0) {
    const why = r.error ? r.error.message : reason(`${r.stdout ?? ''}${r.stderr ?? ''}`, r.status);
    return `not built: ${why} (full log: ${log})`;
  }
  try {
    const addon = createRequire(import.meta.url)(join(here, 'build', 'Release', 'ganfleet_native.node'));
    return `built in ${((Date.now() - started) / 1000).toFixed(1)} s (paths: ${addon.supportedIsas().join(', ')})`;
  } catch (err) {
    return `not built: the binary does not load: ${err.message}`;
  }
}

console.log(`ganfleet native addon ${build()}`);
