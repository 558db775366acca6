/**
 * Multiply-adds of the `conv` preset's D and G steps, counted per kernel call from the layer
 * shapes (no tensor runs). A transposed convolution is counted in both of ganfleet's wasm
 * formulations: zero insertion (a stride-1 conv over the input with stride - 1 zeros inserted
 * between pixels, the formulation before issue 17) and sub-pixel (one stride-1 conv per output
 * phase with only the taps that reach it, ceil(out / stride) outputs per phase and axis). Every
 * other kernel runs the same in both. Padding taps count as executed in both (XNNPACK multiplies
 * them, as a dense formulation does); `useful` excludes them and inserted zeros.
 */

/** A conv from [batch, inSize, inSize, inC] to outC channels, k x k filter, stride s, 'same' padding (the conv preset's). */
export interface ConvGeometry {
  batch: number;
  inSize: number;
  inC: number;
  outC: number;
  k: number;
  stride: number;
}

export type Layer =
  | { name: string; op: 'matmul'; m: number; n: number; k: number }
  /** The conv's forward pass (Conv2D), its filter gradient (Conv2DBackpropFilter) or its input gradient, the transposed conv (Conv2DBackpropInput). */
  | { name: string; op: 'Conv2D' | 'Conv2DBackpropFilter' | 'Conv2DBackpropInput'; conv: ConvGeometry };

export interface MacCount {
  /** Executed with the zero-insertion transposed conv (and every other kernel as it runs). */
  zeroInsertion: number;
  /** Executed with the sub-pixel transposed conv. */
  subPixel: number;
  /** Of zeroInsertion: products with an inserted zero. */
  insertedZeros: number;
  /** Products of two real operands (no padding tap, no inserted zero): the least any formulation computes. */
  useful: number;
}

/** 'same' padding before the input along one axis (tfjs's rule: the smaller half first). */
function padBefore(size: number, k: number, stride: number): number {
  const out = Math.ceil(size / stride);
  return Math.floor(Math.max((out - 1) * stride + k - size, 0) / 2);
}

const outSize = (g: ConvGeometry): number => Math.ceil(g.inSize / g.stride);

/** Along one axis of the forward conv: taps landing inside the input, summed over the outputs. */
function forwardTaps(g: ConvGeometry): number {
  const top = padBefore(g.inSize, g.k, g.stride);
  let n = 0;
  for (let i = 0; i < outSize(g); i++) for (let a = 0; a < g.k; a++) if (i * g.stride + a - top >= 0 && i * g.stride + a - top < g.inSize) n++;
  return n;
}

/**
 * Along one axis of the transposed conv (outputs: the forward conv's inSize; inputs: its outSize):
 * taps that reach an input pixel (real), an inserted zero, or padding, summed over the outputs.
 */
function transposedTaps(g: ConvGeometry): { real: number; zero: number } {
  const top = padBefore(g.inSize, g.k, g.stride);
  const h = outSize(g);
  let real = 0;
  let zero = 0;
  for (let i = 0; i < g.inSize; i++) {
    for (let a = 0; a < g.k; a++) {
      const r = i + top - a; // the zero-inserted input's row this tap reads
      if (r >= 0 && r % g.stride === 0 && r / g.stride < h) real++;
      else if (r > 0 && r < (h - 1) * g.stride) zero++;
    }
  }
  return { real, zero };
}

/** Along one axis of the sub-pixel form: each of the stride phases computes ceil(out / s) outputs with its own taps. */
function subPixelTaps(g: ConvGeometry): number {
  const top = padBefore(g.inSize, g.k, g.stride);
  const count = Math.ceil(g.inSize / g.stride);
  let taps = 0;
  for (let q = 0; q < g.stride; q++) {
    const p = (q + top) % g.stride;
    taps += p < g.k ? Math.ceil((g.k - p) / g.stride) : 0;
  }
  return count * taps;
}

export function countMacs(layer: Layer): MacCount {
  if (layer.op === 'matmul') {
    const all = layer.m * layer.n * layer.k;
    return { zeroInsertion: all, subPixel: all, insertedZeros: 0, useful: all };
  }
  const g = layer.conv;
  const channels = g.batch * g.inC * g.outC;
  if (layer.op === 'Conv2D' || layer.op === 'Conv2DBackpropFilter') {
    // Both run over every output position and tap (the filter gradient as a dilated conv of x with dy).
    const executed = channels * (outSize(g) * g.k) ** 2;
    return { zeroInsertion: executed, subPixel: executed, insertedZeros: 0, useful: channels * forwardTaps(g) ** 2 };
  }
  const { real, zero } = transposedTaps(g);
  const zeroInsertion = channels * (g.inSize * g.k) ** 2;
  const subPixel = g.stride === 1 ? zeroInsertion : channels * subPixelTaps(g) ** 2;
  return { zeroInsertion, subPixel, insertedZeros: channels * ((real + zero) ** 2 - real ** 2), useful: channels * real ** 2 };
}

/**
 * The conv and matmul kernels of one `conv` step at batch b: D's runs on 2b images (real and
 * generated), G's on b. D step: G forwards without gradients, D forwards and its weights'
 * gradients (D's first layer needs no input gradient). G step: G and D forwards, D's input
 * gradients, G's weights' and inputs' gradients (G's first layer needs no input gradient).
 */
export function convStepLayers(phase: 'D' | 'G', b: number): Layer[] {
  const dn = phase === 'D' ? 2 * b : b;
  const conv = (batch: number, inSize: number, inC: number, outC: number, k: number, stride: number): ConvGeometry => ({ batch, inSize, inC, outC, k, stride });
  // G's transposed convs as the convs they transpose: from their output back to their input.
  const deconv1 = conv(b, 14, 32, 64, 5, 2);
  const deconv2 = conv(b, 28, 16, 32, 5, 2);
  const convOut = conv(b, 28, 16, 1, 1, 1);
  const dConv1 = conv(dn, 28, 1, 32, 5, 1);
  const dConv2 = conv(dn, 14, 32, 64, 5, 1);
  const gForward: Layer[] = [
    { name: 'G dense1', op: 'matmul', m: b, n: 1024, k: 100 },
    { name: 'G dense2', op: 'matmul', m: b, n: 3136, k: 1024 },
    { name: 'G deconv1 (transposed conv)', op: 'Conv2DBackpropInput', conv: deconv1 },
    { name: 'G deconv2 (transposed conv)', op: 'Conv2DBackpropInput', conv: deconv2 },
    { name: 'G conv_out', op: 'Conv2D', conv: convOut },
  ];
  const dForward: Layer[] = [
    { name: 'D conv1', op: 'Conv2D', conv: dConv1 },
    { name: 'D conv2', op: 'Conv2D', conv: dConv2 },
    { name: 'D dense1', op: 'matmul', m: dn, n: 1024, k: 3136 },
    { name: 'D dense2', op: 'matmul', m: dn, n: 1, k: 1024 },
  ];
  if (phase === 'D') {
    return [
      ...gForward,
      ...dForward,
      { name: 'D dense2 dW', op: 'matmul', m: 1024, n: 1, k: dn },
      { name: 'D dense2 dx', op: 'matmul', m: dn, n: 1024, k: 1 },
      { name: 'D dense1 dW', op: 'matmul', m: 3136, n: 1024, k: dn },
      { name: 'D dense1 dx', op: 'matmul', m: dn, n: 3136, k: 1024 },
      { name: 'D conv2 dfilter', op: 'Conv2DBackpropFilter', conv: dConv2 },
      { name: 'D conv2 dx', op: 'Conv2DBackpropInput', conv: dConv2 },
      { name: 'D conv1 dfilter', op: 'Conv2DBackpropFilter', conv: dConv1 },
    ];
  }
  return [
    ...gForward,
    ...dForward,
    { name: 'D dense2 dx', op: 'matmul', m: dn, n: 1024, k: 1 },
    { name: 'D dense1 dx', op: 'matmul', m: dn, n: 3136, k: 1024 },
    { name: 'D conv2 dx', op: 'Conv2DBackpropInput', conv: dConv2 },
    { name: 'D conv1 dx', op: 'Conv2DBackpropInput', conv: dConv1 },
    { name: 'G conv_out dfilter', op: 'Conv2DBackpropFilter', conv: convOut },
    { name: 'G conv_out dx', op: 'Conv2DBackpropInput', conv: convOut },
    { name: 'G deconv2 dfilter', op: 'Conv2DBackpropFilter', conv: deconv2 },
    { name: 'G deconv2 dx (conv)', op: 'Conv2D', conv: deconv2 },
    { name: 'G deconv1 dfilter', op: 'Conv2DBackpropFilter', conv: deconv1 },
    { name: 'G deconv1 dx (conv)', op: 'Conv2D', conv: deconv1 },
    { name: 'G dense2 dW', op: 'matmul', m: 1024, n: 3136, k: b },
    { name: 'G dense2 dx', op: 'matmul', m: b, n: 1024, k: 3136 },
    { name: 'G dense1 dW', op: 'matmul', m: 100, n: 1024, k: b },
  ];
}
