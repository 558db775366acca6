import { Writable } from 'node:stream';

/** What one frame of the progress bar shows. */
export interface ProgressView {
  round: number;
  totalRounds: number;
  step: number;
  steps: number;
  /** Undefined until two rounds have been seen. */
  stepsPerSec: number | undefined;
  etaS: number | undefined;
  dLoss: number | undefined;
  gLoss: number | undefined;
  /** Workers in the last round (absent in-process). */
  workers: number | undefined;
}

/** A round as `ganfleet train` reports it (RoundLog from the coordinator, RoundResult in-process). */
export interface ProgressRound {
  round: number;
  iteration: number;
  phase: 'D' | 'G';
  loss: number;
  workers?: number;
}

const RATE_WINDOW_MS = 10_000;
const REDRAW_MS = 100;
const WARN = 40;
const CLEAR_LINE = '\r\x1b[2K';

/** One line, at most `columns - 1` wide: `step 120/1000 [███░░░] 12% | 35.2 steps/s | ETA 0:25 | D 0.693 G 0.712 | 3 workers`. */
export function formatProgress(v: ProgressView, columns: number): string {
  const done = v.totalRounds > 0 ? Math.min(1, v.round / v.totalRounds) : 1;
  const head = `step ${v.step}/${v.steps}`;
  const tail = [
    `${Math.floor(done * 100)}%`,
    `${v.stepsPerSec === undefined ? '–' : v.stepsPerSec.toFixed(1)} steps/s`,
    `ETA ${v.etaS === undefined ? '–' : formatDuration(v.etaS)}`,
    `D ${loss(v.dLoss)} G ${loss(v.gLoss)}`,
    ...(v.workers === undefined ? [] : [`${v.workers} worker${v.workers === 1 ? '' : 's'}`]),
  ].join(' | ');
  const room = columns - 1 - head.length - tail.length - 4;
  const width = Math.min(30, room);
  const bar = width >= 5 ? ` [${'█'.repeat(Math.round(done * width)).padEnd(width, '░')}] ` : ' ';
  return `${head}${bar}${tail}`.slice(0, Math.max(0, columns - 1));
}

/** `m:ss`, or `h:mm:ss` from an hour. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const [h, m, sec] = [Math.floor(s / 3600), Math.floor((s % 3600) / 60), s % 60];
  const mm = h > 0 ? String(m).padStart(2, '0') : String(m);
  return `${h > 0 ? `${h}:` : ''}${mm}:${String(sec).padStart(2, '0')}`;
}

function loss(x: number | undefined): string {
  return x === undefined ? '–' : x.toFixed(3);
}

/**
 * The `ganfleet train` progress bar on a terminal (stderr). It owns the bottom line: log lines
 * reach the terminal only through `logStream`, which lets warn and above through, printed above
 * the bar; everything else goes to --log-file only, so JSON lines never garble the bar.
 */
export class ProgressBar {
  /** A pino destination (and a sink for worker processes' output): one JSON line per write or chunked. */
  readonly logStream: Writable;
  private readonly rates: { t: number; round: number; step: number }[] = [];
  private readonly losses: { D: number | undefined; G: number | undefined } = { D: undefined, G: undefined };
  private last: ProgressRound | undefined;
  private drawnAt = -Infinity;
  private shown = '';

  constructor(
    private readonly out: { write(s: string): unknown; columns?: number },
    private readonly totals: { totalRounds: number; steps: number },
    private readonly now: () => number = () => performance.now(),
  ) {
    let partial = '';
    this.logStream = new Writable({
      write: (chunk: Buffer | string, _encoding, done) => {
        const lines = (partial + chunk.toString()).split('\n');
        partial = lines.pop() ?? '';
        for (const line of lines) if (line.trim() && shouldShow(line)) this.above(line);
        done();
      },
    });
  }

  update(r: ProgressRound): void {
    const t = this.now();
    this.last = r;
    this.losses[r.phase] = r.loss;
    this.rates.push({ t, round: r.round + 1, step: r.iteration });
    while (this.rates.length > 2 && (this.rates[0] as { t: number }).t < t - RATE_WINDOW_MS) this.rates.shift();
    if (t - this.drawnAt >= REDRAW_MS || r.round + 1 >= this.totals.totalRounds) this.draw(t);
  }

  /** Leaves the final state of the bar on its own line. */
  finish(): void {
    if (this.last) this.draw(this.now());
    if (this.shown) this.out.write('\n');
    this.shown = '';
  }

  view(): ProgressView {
    const first = this.rates[0];
    const latest = this.rates.at(-1);
    const dt = first && latest ? (latest.t - first.t) / 1000 : 0;
    const roundsPerSec = first && latest && dt > 0 ? (latest.round - first.round) / dt : undefined;
    const round = latest?.round ?? 0;
    return {
      round,
      totalRounds: this.totals.totalRounds,
      step: latest?.step ?? 0,
      steps: this.totals.steps,
      stepsPerSec: first && latest && dt > 0 ? (latest.step - first.step) / dt : undefined,
      etaS: roundsPerSec ? (this.totals.totalRounds - round) / roundsPerSec : undefined,
      dLoss: this.losses.D,
      gLoss: this.losses.G,
      workers: this.last?.workers,
    };
  }

  private draw(t: number): void {
    this.drawnAt = t;
    this.shown = formatProgress(this.view(), this.out.columns || 80);
    this.out.write(`${CLEAR_LINE}${this.shown}`);
  }

  private above(line: string): void {
    this.out.write(`${CLEAR_LINE}${line}\n${this.shown}`);
  }
}

/** Warn and above, and anything that is not a pino JSON line (a crash message must not vanish). */
function shouldShow(line: string): boolean {
  try {
    const level = (JSON.parse(line) as { level?: unknown }).level;
    return typeof level !== 'number' || level >= WARN;
  } catch {
    return true;
  }
}
