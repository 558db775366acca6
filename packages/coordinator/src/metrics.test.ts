import { describe, expect, it } from 'vitest';
import type { Coordinator } from './coordinator.js';
import { RunEvents } from './events.js';
import { createMetrics } from './metrics.js';

describe('metrics', () => {
  it('exports the latest evaluation as ganfleet_eval{metric}', async () => {
    const events = new RunEvents();
    // Only what the metrics read: the event stream, the step and the worker list.
    const coordinator = { events, run: { iteration: 7 }, status: () => ({ workers: [] }) } as unknown as Coordinator;
    const registry = createMetrics(coordinator);
    events.emit('evaluated', { step: 7, fid: 12.5, modes: 9, inceptionScore: 8.25, klUniform: 0.03, parzen: 201 });
    const text = await registry.metrics();
    expect(text).toContain('ganfleet_eval{metric="fid"} 12.5');
    expect(text).toContain('ganfleet_eval{metric="modes"} 9');
    expect(text).toContain('ganfleet_eval{metric="inception_score"} 8.25');
    expect(text).toContain('ganfleet_eval{metric="parzen"} 201');
    expect(text).toContain('ganfleet_step 7');
  });
});
