/*
 * float16 on the wire: each tensor scaled by a power of two that puts its largest magnitude in
 * [2^14, 2^15), so that tiny values (a generator's gradients at initialisation are mostly below
 * float16's 2^-14) keep their digits instead of flushing to zero, and large ones cannot overflow.
 */

/** 14 - ⌊log2 m⌋ for the largest finite magnitude m of `values` (0 when all are zero or non-finite). */
export function log2ScaleFor(values: Float32Array): number {
  const bits = new Int32Array(values.buffer, values.byteOffset, values.length);
  // For non-negative floats the bit patterns order as the values do.
  let max = 0;
  for (let i = 0; i < bits.length; i++) {
    const abs = bits[i]! & 0x7fffffff;
    if (abs > max && abs < 0x7f800000) max = abs;
  }
  if (max === 0) return 0;
  const exp = max >>> 23;
  // A float32 subnormal has no implicit bit: its leading mantissa bit gives the binade.
  const floorLog2 = exp !== 0 ? exp - 127 : 31 - Math.clz32(max) - 149;
  return 14 - floorLog2;
}

const scratchF32 = new Float32Array(1);
const scratchI32 = new Int32Array(scratchF32.buffer);

/**
 * The float32 bits of (the float32 with `bits`) × 2^k, k from log2ScaleFor. For normal values
 * that is k added to the exponent field; one that would drop below float32's normal range ends
 * far below float16's smallest value, so it becomes a signed zero.
 */
export function scaleBits(bits: number, k: number): number {
  const exp = (bits >>> 23) & 0xff;
  if (exp === 0xff) return bits;
  if (exp !== 0) return exp + k > 0 ? bits + k * 0x800000 : bits & 0x80000000;
  // Zero or a float32 subnormal (rare; only tensors of subnormals scale them up): by arithmetic.
  scratchI32[0] = bits;
  scratchF32[0] = scratchF32[0]! * 2 ** k;
  return scratchI32[0]!;
}

/**
 * IEEE 754 binary16 bits nearest to the float32 with these `bits` (round half to even); overflow
 * gives ±Infinity, NaN stays NaN. Exported for its tests.
 */
export function float16BitsOf(bits: number): number {
  const sign = (bits >>> 16) & 0x8000;
  const abs = bits & 0x7fffffff;
  // The common case, a result in the normal range [2^-14, 65504]: adding 0xfff plus the kept
  // lowest bit rounds the 13 dropped bits half to even, a carry moving into the exponent as it
  // should; then the exponent is rebased from 127 to 15.
  if (abs >= 0x38800000 && abs < 0x477ff000) return sign | (((abs + 0xfff + ((abs >>> 13) & 1)) >>> 13) - ((127 - 15) << 10));
  const exp32 = abs >>> 23;
  const mant = abs & 0x7fffff;
  if (exp32 === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 | (mant >>> 13) : 0);
  if (abs >= 0x477ff000) return sign | 0x7c00;
  // Below the normal range: a subnormal half, or zero; below 2^-25 everything rounds to zero
  // (2^-25 itself is a tie that goes to even zero).
  const exp16 = exp32 - 127 + 15;
  if (exp16 < -10) return sign;
  // Shift the mantissa, implicit bit included, down to the 2^-24 grid.
  const full = mant | 0x800000;
  const shift = 14 - exp16;
  const half = 1 << (shift - 1);
  const rem = full & ((1 << shift) - 1);
  let m = full >>> shift;
  if (rem > half || (rem === half && (m & 1) !== 0)) m++; // may carry into the smallest normal: still correct
  return sign | m;
}

let halfTable: Float32Array | undefined;

/** All 65536 binary16 values as float32, built on first float16 decode. */
export function float16Table(): Float32Array {
  if (halfTable) return halfTable;
  const table = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >>> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0) table[h] = sign * mant * 2 ** -24;
    else if (exp === 0x1f) table[h] = mant !== 0 ? NaN : sign * Infinity;
    else table[h] = sign * (1 + mant / 1024) * 2 ** (exp - 15);
  }
  halfTable = table;
  return table;
}
