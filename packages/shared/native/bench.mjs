// GFLOP/s of the addon's kernels on the seed GAN's shapes, per ISA path and
// thread count, best of several repetitions, printed as JSON.
//   node packages/shared/native/bench.mjs [--isa=avx512,avx2] [--threads=1,2] [--reps=7]
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';

import * as native from './index.js';

const arg = (name, fallback) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback;
const isas = arg('isa', native.supportedIsas().join(',')).split(',');
const threadCounts = arg('threads', '1,2').split(',').map(Number);
const reps = Number(arg('reps', '7'));

function cpuInfo() {
  const text = readFileSync('/proc/cpuinfo', 'utf8');
  const field = (name) => text.match(new RegExp(`^${name}\\s*: (.*)$`, 'm'))?.[1];
  return { model: field('model name'), family: Number(field('cpu family')), nominalMHz: Number(field('cpu MHz')) };
}

// fp32 FLOP per cycle per core: 2 FMA pipes x lanes x 2. Zen 4 (family 25)
// runs 512-bit FMAs double-pumped on 256-bit pipes; Zen 5 (family 26) has
// 512-bit pipes.
function flopsPerCycle(family, isa) {
  if (isa === 'avx512') return family >= 26 ? 64 : 32;
  if (isa === 'avx2') return 32;
  return 8; // SSE2 baseline: 4 lanes, separate multiply and add
}

const random = (n) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898) * 0.5);

function timeBest(run) {
  run();
  let best = Infinity;
  const deadline = performance.now() + 3000;
  for (let r = 0; r < reps || (r < 3 * reps && performance.now() < deadline); r++) {
    const t0 = performance.now();
    run();
    best = Math.min(best, performance.now() - t0);
  }
  return best;
}

function gemmCase(name, transA, transB, m, n, k) {
  const a = random(m * k);
  const b = random(k * n);
  const c = new Float32Array(m * n);
  return {
    kind: 'sgemm',
    name,
    shape: `${transA ? 'T' : 'N'}${transB ? 'T' : 'N'} ${m}x${n}x${k}`,
    flops: 2 * m * n * k,
    run: () => native.sgemm({ transA, transB, m, n, k, a, b, c }),
  };
}

function convCases(name, g) {
  const { outHeight, outWidth } = native.conv2dOutputSize(g);
  const x = random(g.batch * g.inHeight * g.inWidth * g.inChannels);
  const filter = random(g.filterHeight * g.filterWidth * g.inChannels * g.outChannels);
  const y = new Float32Array(g.batch * outHeight * outWidth * g.outChannels);
  const dx = new Float32Array(x.length);
  const dfilter = new Float32Array(filter.length);
  // Multiply-adds of the dense formulation (padding taps included), the usual convention.
  const flops = 2 * g.batch * outHeight * outWidth * g.outChannels * g.filterHeight * g.filterWidth * g.inChannels;
  const shape = `[${g.batch},${g.inHeight},${g.inWidth},${g.inChannels}] ${g.filterHeight}x${g.filterWidth}/${g.strideHeight ?? 1} -> ${g.outChannels}`;
  return [
    { kind: 'conv2d', name, shape, flops, run: () => native.conv2d({ ...g, x, filter, y }) },
    { kind: 'conv2dBackpropInput', name, shape, flops, run: () => native.conv2dBackpropInput({ ...g, dy: y, filter, dx }) },
    { kind: 'conv2dBackpropFilter', name, shape, flops, run: () => native.conv2dBackpropFilter({ ...g, x, dy: y, dfilter }) },
  ];
}

const same5 = (size, stride) => {
  const out = Math.ceil(size / stride);
  const total = Math.max((out - 1) * stride + 5 - size, 0);
  return [Math.floor(total / 2), total - Math.floor(total / 2)];
};
const conv = (batch, size, inC, outC, f, stride) => {
  const [a, b] = f === 5 ? same5(size, stride) : [0, 0];
  const s = stride;
  return {
    batch,
    inHeight: size,
    inWidth: size,
    inChannels: inC,
    outChannels: outC,
    filterHeight: f,
    filterWidth: f,
    strideHeight: s,
    strideWidth: s,
    padTop: a,
    padBottom: b,
    padLeft: a,
    padRight: b,
  };
};

const cases = [
  gemmCase('square', false, false, 1024, 1024, 1024),
  gemmCase('D dense1 x.W', false, false, 128, 1024, 3136),
  gemmCase('D dense1 dy.WT', false, true, 128, 3136, 1024),
  gemmCase('D dense1 xT.dy', true, false, 3136, 1024, 128),
  gemmCase('D dense2 x.W', false, false, 128, 1, 1024),
  gemmCase('G dense1 x.W', false, false, 64, 1024, 100),
  gemmCase('G dense1 dy.WT', false, true, 64, 100, 1024),
  gemmCase('G dense1 xT.dy', true, false, 100, 1024, 64),
  gemmCase('G dense2 x.W', false, false, 64, 3136, 1024),
  gemmCase('G dense2 dy.WT', false, true, 64, 1024, 3136),
  gemmCase('G dense2 xT.dy', true, false, 1024, 3136, 64),
  ...convCases('D conv1 5x5 1->32', conv(128, 28, 1, 32, 5, 1)),
  ...convCases('D conv2 5x5 32->64', conv(128, 14, 32, 64, 5, 1)),
  // conv2dTranspose forward is the backprop-input row; its backprop input is the conv2d row.
  ...convCases('G deconv1 (T: 7x7x64 -> 14x14x32)', conv(64, 14, 32, 64, 5, 2)),
  ...convCases('G deconv2 (T: 14x14x32 -> 28x28x16)', conv(64, 28, 16, 32, 5, 2)),
  ...convCases('G conv_out 1x1 16->1', conv(64, 28, 16, 1, 1, 1)),
];

const cpu = cpuInfo();
const loadBefore = loadavg()[0];
const results = [];
for (const isa of isas) {
  native.setIsa(isa);
  const peak = (flopsPerCycle(cpu.family, isa) * cpu.nominalMHz) / 1000;
  for (const threads of threadCounts) {
    native.setThreads(threads);
    for (const c of cases) {
      const ms = timeBest(c.run);
      const gflops = c.flops / ms / 1e6;
      results.push({
        isa,
        threads,
        kind: c.kind,
        name: c.name,
        shape: c.shape,
        ms: +ms.toFixed(3),
        gflops: +gflops.toFixed(1),
        pctOfNominalCorePeak: +((100 * gflops) / (peak * threads)).toFixed(0),
      });
    }
  }
}
const loadAfter = loadavg()[0];

console.log(
  JSON.stringify(
    {
      date: new Date().toISOString(),
      cpu: { ...cpu, logicalCpus: cpus().length },
      peak: {
        how: 'FLOP/cycle x nominal clock ("cpu MHz" in /proc/cpuinfo, which a VM reports as the nominal clock; boost can exceed it). Per core: 2 FMA pipes x fp32 lanes x 2 FLOP; Zen 4 (family 25) double-pumps 512-bit FMAs on 256-bit pipes (32 FLOP/cycle), Zen 5 (family 26) has 512-bit pipes (64 FLOP/cycle with AVX-512, 32 with AVX2).',
        gflopsPerCore: Object.fromEntries(isas.map((isa) => [isa, +((flopsPerCycle(cpu.family, isa) * cpu.nominalMHz) / 1000).toFixed(1)])),
      },
      load: { before: loadBefore, after: loadAfter, noisy: Math.max(loadBefore, loadAfter) > 0.5 },
      reps,
      results,
    },
    null,
    1,
  ),
);
