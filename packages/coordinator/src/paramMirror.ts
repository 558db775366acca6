import { GanError, type NamedTensor } from '@ganfleet/shared/wire';
import type { ModelPreset } from '@ganfleet/shared/model';
import type { ParamSource } from './updateBroadcast.js';

/**
 * A relay's copy of the run's parameters, as its parent sends them: the whole set with each
 * welcome, the changed ones with each round. It versions them as the coordinator's ParamStore
 * does, so that the relay sends each of its own members only what that member lacks.
 */
export class ParamMirror implements ParamSource {
  version = 0;
  readonly params = new Map<string, Float32Array>();
  private readonly changedAt = new Map<string, number>();
  private readonly shapes: ReadonlyMap<string, number>;

  constructor(readonly preset: ModelPreset) {
    this.shapes = new Map(preset.params.map((s) => [s.name, s.shape.reduce((a, b) => a * b, 1)]));
    for (const s of preset.params) this.params.set(s.name, new Float32Array(this.shapes.get(s.name) as number));
  }

  /** Applies parameters from the parent (copied: the frame they are views of is reused); all of them, from a welcome, make every member stale. */
  update(tensors: readonly NamedTensor[], all = false): void {
    for (const t of tensors) {
      const target = this.params.get(t.name);
      if (!target || target.length !== t.values.length) throw new GanError('BAD_TENSOR', `parameter ${t.name} does not belong to ${this.preset.name}`);
    }
    this.version += 1;
    for (const t of tensors) {
      (this.params.get(t.name) as Float32Array).set(t.values);
      this.changedAt.set(t.name, this.version);
    }
    if (all) for (const name of this.params.keys()) this.changedAt.set(name, this.version);
  }

  copySettled(name: string, from: number, to: number, into: Float32Array): void {
    const values = this.params.get(name);
    if (!values) throw new Error(`no parameter ${name}`);
    into.set(values.subarray(from, to));
  }

  changedSince(version: number): string[] {
    return this.preset.params.map((s) => s.name).filter((n) => (this.changedAt.get(n) ?? 0) > version);
  }
}
