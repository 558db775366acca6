import { describe, expect, it } from 'vitest';
import { ProgressBar, type ProgressView, formatDuration, formatProgress } from './progress.js';

const view: ProgressView = {
  round: 250,
  totalRounds: 1000,
  step: 110,
  steps: 485,
  stepsPerSec: 35.24,
  etaS: 75,
  dLoss: 0.69314,
  gLoss: 0.7123,
  workers: 3,
};

describe('formatProgress', () => {
  it('shows step, a bar of the rounds done, steps/s, ETA, both losses and the workers', () => {
    expect(formatProgress(view, 120)).toBe('step 110/485 [████████░░░░░░░░░░░░░░░░░░░░░░] 25% | 35.2 steps/s | ETA 1:15 | D 0.693 G 0.712 | 3 workers');
  });

  it('shows dashes for what is not known yet, and no workers in-process', () => {
    const line = formatProgress({ ...view, round: 0, step: 0, stepsPerSec: undefined, etaS: undefined, dLoss: undefined, workers: undefined }, 100);
    expect(line).toMatch(/^step 0\/485 \[░+\] 0% \| – steps\/s \| ETA – \| D – G 0\.712$/);
  });

  it('never wraps: the bar shrinks, then goes, then the line is cut', () => {
    for (const columns of [200, 90, 70, 40, 10, 1]) expect(formatProgress(view, columns).length).toBeLessThanOrEqual(Math.max(0, columns - 1));
    expect(formatProgress(view, 90)).toContain('[');
    expect(formatProgress(view, 70)).not.toContain('[');
  });

  it('is full at the end', () => {
    expect(formatProgress({ ...view, round: 1000, step: 485 }, 120)).toContain(`[${'█'.repeat(30)}] 100%`);
  });
});

describe('formatDuration', () => {
  it('is m:ss below an hour, h:mm:ss above', () => {
    expect(formatDuration(5)).toBe('0:05');
    expect(formatDuration(75.4)).toBe('1:15');
    expect(formatDuration(3600 + 62)).toBe('1:01:02');
  });
});

describe('ProgressBar', () => {
  const setup = () => {
    const written: string[] = [];
    let t = 0;
    const bar = new ProgressBar({ write: (s: string) => written.push(s), columns: 120 }, { totalRounds: 10, steps: 5 }, () => t);
    return { bar, written, advance: (ms: number) => (t += ms) };
  };

  it('measures rates and ETA from the rounds it sees', () => {
    const { bar, advance } = setup();
    bar.update({ round: 0, iteration: 0, phase: 'D', loss: 1.2 });
    advance(1000);
    bar.update({ round: 1, iteration: 1, phase: 'G', loss: 0.8, workers: 2 });
    expect(bar.view()).toMatchObject({ round: 2, step: 1, stepsPerSec: 1, etaS: 8, dLoss: 1.2, gLoss: 0.8, workers: 2 });
  });

  it('prints warn and above (and non-JSON) above the bar, drops the rest, even when lines arrive in pieces', () => {
    const { bar, written } = setup();
    bar.update({ round: 0, iteration: 0, phase: 'D', loss: 1 });
    const frame = written.at(-1) as string;
    const warn = JSON.stringify({ level: 40, msg: 'worker unresponsive: dropping it', code: 'WORKER_LOST' });
    bar.logStream.write(`${JSON.stringify({ level: 30, msg: 'round' })}\n${warn.slice(0, 10)}`);
    bar.logStream.write(`${warn.slice(10)}\nSegmentation fault\n`);
    expect(written.slice(1)).toEqual([`\r\x1b[2K${warn}\n${frame.slice(5)}`, `\r\x1b[2KSegmentation fault\n${frame.slice(5)}`]);
  });

  it('redraws at most every 100 ms, but always the last round, and ends with a newline', () => {
    const { bar, written } = setup();
    for (let round = 0; round < 9; round++) bar.update({ round, iteration: 0, phase: 'D', loss: 1 });
    expect(written).toHaveLength(1);
    bar.update({ round: 9, iteration: 5, phase: 'G', loss: 1 });
    expect(written.at(-1)).toContain('step 5/5');
    bar.finish();
    expect(written.at(-1)).toBe('\n');
  });
});
