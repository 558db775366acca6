import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { GanError } from '../wire/index.js';
import { createLogger } from './logger.js';

describe('createLogger with a log file', () => {
  const dirs: string[] = [];
  const tempDir = (): string => {
    const dir = mkdtempSync(join(tmpdir(), 'ganfleet-log-'));
    dirs.push(dir);
    return dir;
  };
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it("creates the file's folder (a run's --out, not made yet) and appends JSON lines to it", async () => {
    const file = join(tempDir(), 'run', 'nested', 'log.jsonl');
    const log = createLogger({ level: 'info', destination: { write: () => undefined }, file });
    log.info({ round: 7 }, 'round');
    // The file stream writes asynchronously.
    const lines = await vi.waitFor(() => {
      const text = readFileSync(file, 'utf8');
      expect(text).toContain('\n');
      return text.trim().split('\n');
    });
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0] as string)).toMatchObject({ round: 7, msg: 'round' });
  });

  it('fails at once with CONFIG_INVALID when the path cannot be a file', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'plain'), 'not a folder');
    const file = join(dir, 'plain', 'log.jsonl');
    expect(() => createLogger({ destination: { write: () => undefined }, file })).toThrow(GanError);
    expect(() => createLogger({ destination: { write: () => undefined }, file })).toThrow(/cannot open the log file .*plain\/log\.jsonl/);
  });
});
