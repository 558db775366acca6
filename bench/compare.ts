/**
 * ||a - b|| / ||a|| over all the tensors of `a` together (per tensor, a gradient that is ~0, such
 * as a bias before batch norm, would give rounding noise over noise), with the largest absolute
 * difference and value; `b` must hold the same names and lengths. For the benches and the GPU check.
 */
export function compareTensors(a: Map<string, Float32Array>, b: Map<string, Float32Array>): { relL2: number; maxAbsDiff: number; maxAbs: number } {
  let diff = 0;
  let norm = 0;
  let maxAbsDiff = 0;
  let maxAbs = 0;
  for (const [name, va] of a) {
    const vb = b.get(name);
    if (vb?.length !== va.length) throw new Error(`tensor ${name} missing or misshapen`);
    for (let i = 0; i < va.length; i++) {
      const d = (va[i] as number) - (vb[i] as number);
      diff += d * d;
      norm += (va[i] as number) ** 2;
      maxAbsDiff = Math.max(maxAbsDiff, Math.abs(d));
      maxAbs = Math.max(maxAbs, Math.abs(va[i] as number));
    }
  }
  return { relL2: Math.sqrt(diff / norm), maxAbsDiff, maxAbs };
}
