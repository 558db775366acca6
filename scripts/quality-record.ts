/*
 * The quality record, from run logs: rewrites the Markdown between `<!-- quality:NAME -->` and
 * `<!-- /quality:NAME -->` in README.md and docs/quality.md (wherever the markers are).
 *
 *   npx tsx scripts/quality-record.ts runs RUN...   one row per run, then the mean ± s.d. over them
 *   npx tsx scripts/quality-record.ts curve RUN     one row per `eval` line of a run's log
 *   npx tsx scripts/quality-record.ts steps RUN     one row per RUN/steps/N.json: `ganfleet eval --parzen
 *                                                   --json` of G's weights at step N (from a checkpoint)
 *
 * A RUN directory holds log.jsonl or log.jsonl.gz (the run's `--log-file`) and, for `runs`, its
 * generator/model.json and eval.json (the output of `ganfleet eval --model RUN/generator --parzen
 * --json`). The recorded runs are kept that way in docs/runs/. NAME is `runs-` or `curve-` followed
 * by the first run directory's name.
 */
import { existsSync } from 'node:fs';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import * as prettier from 'prettier';

type Line = Record<string, unknown> & { time: number; msg?: string };

interface Scores {
  fid: number;
  modes: number;
  klUniform: number;
  inceptionScore: number;
  parzen?: number;
  parzenStderr?: number;
}

const root = fileURLToPath(new URL('..', import.meta.url));

/** The run's log.jsonl, or log.jsonl.gz as the recorded runs in docs/runs keep it. */
async function logOf(run: string): Promise<Line[]> {
  const plain = join(run, 'log.jsonl');
  const text = existsSync(plain) ? await readFile(plain, 'utf8') : gunzipSync(await readFile(`${plain}.gz`)).toString('utf8');
  return text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Line);
}

const fixed = (v: number | undefined, digits: number): string => (v === undefined ? '—' : v.toFixed(digits));
const parzenCell = (s: Scores): string => (s.parzen === undefined ? '—' : `${fixed(s.parzen, 1)} ± ${fixed(s.parzenStderr, 1)}`);
const header = '| seed | steps | training | Parzen (± s.e.) | FID | modes | KL(hist ‖ uniform) | IS |\n|---|---|---|---|---|---|---|---|\n';
const stepHeader = '| step | training | Parzen (± s.e.) | FID | modes | KL(hist ‖ uniform) | IS |\n|---|---|---|---|---|---|---|\n';

/** A gap this long between two log lines is a pause (the run stopped and resumed, or its processes were stopped), not training. */
const PAUSE_MS = 60_000;

/** Minutes of training from the log's first line to `until`, pauses left out. */
function trainingMinutes(log: readonly Line[], until: number): number {
  let ms = 0;
  for (let i = 1; i < log.length && (log[i] as Line).time <= until; i++) {
    const gap = (log[i] as Line).time - (log[i - 1] as Line).time;
    if (gap < PAUSE_MS) ms += gap;
  }
  return ms / 60000;
}

function meanSd(values: number[], digits = 1): string {
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const sd = Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, values.length - 1));
  return `${mean.toFixed(digits)} ± ${sd.toFixed(digits)}`;
}

/** `ganfleet eval --json` output: the scores, with Parzen as mean and standard error. */
type Evaluation = Omit<Scores, 'parzen' | 'parzenStderr'> & { parzen?: { mean: number; stderr: number } };

async function readScores(path: string): Promise<Scores> {
  const evaluation = JSON.parse(await readFile(path, 'utf8')) as Evaluation;
  return { ...evaluation, parzen: evaluation.parzen?.mean, parzenStderr: evaluation.parzen?.stderr };
}

const scoreCells = (s: Scores): string => `${parzenCell(s)} | ${fixed(s.fid, 1)} | ${s.modes}/10 | ${fixed(s.klUniform, 3)} | ${fixed(s.inceptionScore, 2)}`;

/** One row per run (its seed, steps, training time from first log line to 'training finished', or to its last line if it was stopped), and their mean ± s.d. */
async function runsTable(runs: string[]): Promise<string> {
  const rows: { seed: unknown; steps: unknown; minutes: number; scores: Scores }[] = [];
  for (const run of runs) {
    const log = await logOf(run);
    const model = JSON.parse(await readFile(join(run, 'generator', 'model.json'), 'utf8')) as {
      userDefinedMetadata: { ganfleet: { seed: number; steps: number } };
    };
    // A run stopped before its end (its generator fetched from the running coordinator) has no 'training finished' line: its last line and the generator's step stand in.
    const finished = log.find((l) => l.msg === 'training finished') ?? { ...(log.at(-1) as Line), step: model.userDefinedMetadata.ganfleet.steps };
    const scores = await readScores(join(run, 'eval.json'));
    rows.push({ seed: model.userDefinedMetadata.ganfleet.seed, steps: finished.step, minutes: trainingMinutes(log, finished.time), scores });
  }
  let out = header;
  for (const r of rows) {
    const s = r.scores;
    out += `| ${String(r.seed)} | ${String(r.steps)} | ${r.minutes.toFixed(1)} min | ${scoreCells(s)} |\n`;
  }
  if (rows.length > 1) {
    const col = (f: (s: Scores) => number | undefined): number[] => rows.map((r) => f(r.scores)).filter((v): v is number => v !== undefined);
    out += `| mean ± s.d. | | | ${meanSd(col((s) => s.parzen))} | ${meanSd(col((s) => s.fid))} | | ${meanSd(
      col((s) => s.klUniform),
      3,
    )} | ${meanSd(
      col((s) => s.inceptionScore),
      2,
    )} |\n`;
  }
  return out;
}

/** The `eval` lines of one run's log: step, training time since the run started, and the scores. */
async function curveTable(run: string): Promise<string> {
  const log = await logOf(run);
  let out = stepHeader;
  for (const l of log.filter((x) => x.msg === 'eval')) {
    const s = l as unknown as Scores & { step: number };
    out += `| ${s.step} | ${trainingMinutes(log, l.time).toFixed(0)} min | ${scoreCells(s)} |\n`;
  }
  return out;
}

/** One row per RUN/steps/N.json (G's weights at step N, scored on 10 000 samples with Parzen), training time to that step. */
async function stepsTable(run: string): Promise<string> {
  const log = await logOf(run);
  const steps = (await readdir(join(run, 'steps')))
    .map((f) => /^(\d+)\.json$/.exec(f)?.[1])
    .filter((n): n is string => n !== undefined)
    .map(Number)
    .sort((a, b) => a - b);
  let out = stepHeader;
  for (const step of steps) {
    const reached = log.find((l) => l.msg === 'round' && l.iteration === step);
    if (!reached) throw new Error(`${run}: no round of step ${step} in the log`);
    out += `| ${step} | ${trainingMinutes(log, reached.time).toFixed(0)} min | ${scoreCells(await readScores(join(run, 'steps', `${step}.json`)))} |\n`;
  }
  return out;
}

/** Replaces the block between the markers in every file that has them; says which did. */
async function rewrite(name: string, table: string): Promise<void> {
  const open = `<!-- quality:${name} -->`;
  const close = `<!-- /quality:${name} -->`;
  let found = false;
  for (const file of ['README.md', 'docs/quality.md']) {
    const path = join(root, file);
    const text = await readFile(path, 'utf8');
    const a = text.indexOf(open);
    const b = text.indexOf(close);
    if (a < 0 || b < a) continue;
    // Formatted as `npm run lint` checks it, so that a regenerated file passes.
    const options = (await prettier.resolveConfig(path)) ?? {};
    await writeFile(path, await prettier.format(`${text.slice(0, a + open.length)}\n\n${table}\n${text.slice(b)}`, { ...options, filepath: path }));
    process.stdout.write(`${file}: ${name} rewritten\n`);
    found = true;
  }
  if (!found) process.stdout.write(`no file has the markers ${open} ... ${close}; the table:\n\n${table}`);
}

const tables = { runs: runsTable, curve: (runs: string[]) => curveTable(runs[0] as string), steps: (runs: string[]) => stepsTable(runs[0] as string) };
const [mode, ...runs] = process.argv.slice(2);
if (!(mode && Object.hasOwn(tables, mode)) || runs.length === 0) throw new Error('usage: quality-record.ts runs RUN... | curve RUN | steps RUN');
await rewrite(`${mode}-${basename(runs[0] as string)}`, await tables[mode as keyof typeof tables](runs));
