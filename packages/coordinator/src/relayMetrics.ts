import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';

/** A relay's Prometheus metrics (its own /metrics), in a registry of its own. */
export class RelayMetrics {
  readonly registry = new Registry();
  private readonly rounds: Counter;
  private readonly roundSeconds: Gauge;
  private readonly combineSeconds: Gauge;
  private readonly bytesIn: Counter;
  private readonly bytesOut: Counter;

  constructor(leaves: () => number) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    new Gauge({
      name: 'ganfleet_relay_leaves',
      help: 'Workers below the relay: the slots it offers its parent',
      registers,
      collect() {
        this.set(leaves());
      },
    });
    this.rounds = new Counter({ name: 'ganfleet_relay_rounds_total', help: 'Rounds answered to the parent', registers });
    this.roundSeconds = new Gauge({ name: 'ganfleet_relay_round_seconds', help: "The last round, from the parent's message to the reply", registers });
    this.combineSeconds = new Gauge({ name: 'ganfleet_relay_combine_seconds', help: "The last round's exact summation and encoding of the reply", registers });
    this.bytesIn = new Counter({ name: 'ganfleet_relay_bytes_in_total', help: 'Bytes received: rounds from the parent, replies from the children', registers });
    this.bytesOut = new Counter({ name: 'ganfleet_relay_bytes_out_total', help: 'Bytes sent: rounds to the children, replies to the parent', registers });
  }

  round(r: { roundMs: number; combineMs: number; bytesIn: number; bytesOut: number }): void {
    this.rounds.inc();
    this.roundSeconds.set(r.roundMs / 1000);
    this.combineSeconds.set(r.combineMs / 1000);
    this.bytesIn.inc(r.bytesIn);
    this.bytesOut.inc(r.bytesOut);
  }
}
