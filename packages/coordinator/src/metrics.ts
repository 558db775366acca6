import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { Coordinator } from './coordinator.js';

/** Rounds per second is measured over this trailing window. */
const RATE_WINDOW_MS = 10_000;

/**
 * The coordinator's Prometheus metrics, in a registry of its own (several coordinators in one
 * process, as in tests, must not share one). Event-driven values are updated as the coordinator
 * announces them; membership values are read from `status()` at scrape time.
 */
export function createMetrics(coordinator: Coordinator): Registry {
  const registry = new Registry();
  const registers = [registry];
  collectDefaultMetrics({ register: registry });

  new Gauge({
    name: 'ganfleet_step',
    help: 'Completed G steps (iterations)',
    registers,
    collect() {
      this.set(coordinator.run.iteration);
    },
  });
  const rounds = new Counter({ name: 'ganfleet_rounds_total', help: 'Rounds applied', registers });
  const recent: number[] = [];
  const since = performance.now();
  const prune = (now: number): void => {
    while (recent.length && (recent[0] as number) < now - RATE_WINDOW_MS) recent.shift();
  };
  new Gauge({
    name: 'ganfleet_rounds_per_second',
    help: `Rounds applied per second over the last ${RATE_WINDOW_MS / 1000} s`,
    registers,
    collect() {
      const now = performance.now();
      prune(now);
      this.set(recent.length / (Math.min(RATE_WINDOW_MS, Math.max(now - since, 1)) / 1000));
    },
  });
  const loss = new Gauge({ name: 'ganfleet_loss', help: 'Loss of the last round of each network', labelNames: ['network'] as const, registers });
  new Gauge({
    name: 'ganfleet_workers_connected',
    help: 'Workers currently in the run',
    registers,
    collect() {
      this.set(coordinator.status().workers.length);
    },
  });
  const bytesOut = new Counter({ name: 'ganfleet_bytes_out_total', help: 'Round messages sent to workers (bytes)', registers });
  const bytesIn = new Counter({ name: 'ganfleet_bytes_in_total', help: 'Gradient replies received from workers (bytes)', registers });
  new Gauge({
    name: 'ganfleet_worker_compute_seconds',
    help: "Each connected worker's own compute time in its last round",
    labelNames: ['worker'] as const,
    registers,
    collect() {
      // Reset first: a worker that left must disappear, not keep its last value.
      this.reset();
      for (const w of coordinator.status().workers) this.set({ worker: w.id }, w.lastComputeMs / 1000);
    },
  });
  const lag = new Gauge({
    name: 'ganfleet_straggler_lag_seconds',
    help: "Last round: how far the slowest worker's reply came after the median reply",
    registers,
  });
  const dropped = new Counter({
    name: 'ganfleet_replies_dropped_total',
    help: 'Replies dropped because their round had closed without them',
    labelNames: ['reason'] as const,
    registers,
  });
  const authFailures = new Counter({
    name: 'ganfleet_auth_failures_total',
    help: 'Connections and HTTP requests refused for a missing or wrong token',
    registers,
  });

  const quality = new Gauge({
    name: 'ganfleet_eval',
    help: 'Latest generator evaluation (--eval-every): fid (MNIST-classifier features), modes, inception_score, kl_uniform, parzen',
    labelNames: ['metric'] as const,
    registers,
  });

  coordinator.events.on('evaluated', (e) => {
    quality.set({ metric: 'fid' }, e.fid ?? Number.NaN);
    quality.set({ metric: 'modes' }, e.modes ?? Number.NaN);
    quality.set({ metric: 'inception_score' }, e.inceptionScore ?? Number.NaN);
    quality.set({ metric: 'kl_uniform' }, e.klUniform ?? Number.NaN);
    if (e.parzen !== undefined) quality.set({ metric: 'parzen' }, e.parzen);
  });
  coordinator.events.on('round', (r) => {
    rounds.inc();
    const now = performance.now();
    prune(now);
    recent.push(now);
    loss.set({ network: r.phase }, r.loss);
    bytesOut.inc(r.bytesOut ?? 0);
    bytesIn.inc(r.bytesIn ?? 0);
    lag.set((r.slowest?.lagMs ?? 0) / 1000);
  });
  coordinator.events.on('replyDropped', (d) => dropped.inc({ reason: d.reason }));
  coordinator.events.on('authFailed', () => authFailures.inc());
  return registry;
}
