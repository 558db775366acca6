import * as tf from '@tensorflow/tfjs';

/*
 * The part of tfjs-backend-webgpu's program interface our kernels use (the object
 * runWebGPUProgram compiles: it prepends the bindings, the uniforms and helpers such as
 * setOutputAtIndex to getUserCode()), typed structurally so that type-checking does not need the
 * optional package.
 */

export interface Uniform {
  type: 'int32' | 'float32';
  data: number[];
}

export interface WebGpuBackendLike {
  runWebGPUProgram(program: object, inputs: tf.TensorInfo[], dtype: 'float32', uniforms: Uniform[]): tf.TensorInfo;
  disposeData(dataId: tf.DataId): boolean;
}

export type KernelArgs = Parameters<tf.KernelFunc>[0];

/**
 * What f returns, and the shader keys of the GPU programs it ran, counted where every kernel's
 * programs pass (tf.profile sees only the kernels the engine runs, not the programs a kernel runs
 * inside); none off webgpu.
 */
export async function recordPrograms<T>(f: () => Promise<T>): Promise<{ result: T; programs: string[] }> {
  const backend = tf.backend() as unknown as { runWebGPUProgram?: (program: { shaderKey: string }, ...rest: unknown[]) => unknown };
  const run = backend.runWebGPUProgram;
  const programs: string[] = [];
  if (run) {
    backend.runWebGPUProgram = (program, ...rest) => {
      programs.push(program.shaderKey);
      return run.call(backend, program, ...rest);
    };
  }
  try {
    return { result: await f(), programs };
  } finally {
    if (run) backend.runWebGPUProgram = run;
  }
}

/** A stock webgpu kernel's function, for our kernels to call directly (not through the engine). */
export function webgpuKernel(name: string): tf.KernelFunc {
  const config = tf.getKernel(name, 'webgpu');
  if (!config) throw new Error(`the webgpu backend has no ${name} kernel`);
  return config.kernelFunc;
}

/**
 * One thread per element of the output, in a flat dispatch: `body` runs for each index below
 * uniforms.size and calls setOutputAtIndex(index, …) itself.
 */
export class ElementwiseProgram {
  readonly outputShape: number[];
  readonly workgroupSize: [number, number, number] = [128, 1, 1];
  readonly dispatchLayout: { x: number[] };
  readonly dispatch: [number, number, number];
  readonly size = true;

  constructor(
    readonly variableNames: string[],
    shape: number[],
    readonly shaderKey: string,
    private readonly body: string,
    /** Declarations of the uniforms the body reads, besides size. */
    readonly uniforms?: string,
  ) {
    this.outputShape = shape;
    this.dispatchLayout = { x: shape.map((_, i) => i) };
    this.dispatch = [Math.ceil(tf.util.sizeFromShape(shape) / this.workgroupSize[0]), 1, 1];
  }

  getUserCode(): string {
    return `
      fn main(index : i32) {
        if (index < uniforms.size) {
          ${this.body}
        }
      }
    `;
  }
}
