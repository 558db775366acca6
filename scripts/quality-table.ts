/*
 * Turns the `eval` lines of a run's JSON log (`--log-file`) into the Markdown table of
 * docs/quality.md: step, wall time since the run started, FID, modes, IS, Parzen.
 * Usage: npx tsx scripts/quality-table.ts RUN/log.jsonl
 */
import { readFile } from 'node:fs/promises';

const path = process.argv[2];
if (!path) throw new Error('usage: quality-table.ts LOG.jsonl');
const lines = (await readFile(path, 'utf8'))
  .split('\n')
  .filter((l) => l.startsWith('{'))
  .map((l) => JSON.parse(l) as Record<string, number | string>);
const start = lines[0]?.time as number;
const rows = lines.filter((l) => l.msg === 'eval');
const cell = (v: unknown, digits = 1) => (typeof v === 'number' ? v.toFixed(digits) : '—');
process.stdout.write('| step | wall time | FID | modes | IS | KL(hist ‖ uniform) | Parzen (± s.e.) |\n|---|---|---|---|---|---|---|\n');
for (const r of rows) {
  const minutes = ((r.time as number) - start) / 60000;
  const parzen = typeof r.parzen === 'number' ? `${cell(r.parzen)} ± ${cell(r.parzenStderr)}` : '—';
  process.stdout.write(
    `| ${r.step} | ${minutes.toFixed(0)} min | ${cell(r.fid)} | ${r.modes}/10 | ${cell(r.inceptionScore, 2)} | ${cell(r.klUniform, 3)} | ${parzen} |\n`,
  );
}
