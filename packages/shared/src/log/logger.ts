import { createWriteStream, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { Writable } from 'node:stream';
import { type DestinationStream, type Logger, type LevelWithSilent, multistream, pino } from 'pino';
import pretty from 'pino-pretty';
import { GanError } from '../wire/index.js';

export type { Logger };

export interface LoggerOptions {
  level?: LevelWithSilent;
  /** Human-readable lines (pino-pretty) on stderr instead of JSON lines on stdout. */
  pretty?: boolean;
  /** Also append JSON lines to this file. */
  file?: string;
  /** Where JSON lines go when not pretty (tests capture them). */
  destination?: DestinationStream;
}

/** The one root logger of a process; components take `log.child({ component })`. */
export function createLogger(opts: LoggerOptions = {}): Logger {
  const level = opts.level ?? 'info';
  const streams: { level: LevelWithSilent; stream: DestinationStream }[] = [];
  if (opts.pretty)
    streams.push({ level, stream: pretty({ destination: 2, colorize: process.stderr.isTTY, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' }) });
  else streams.push({ level, stream: opts.destination ?? pino.destination({ dest: 1, sync: true }) });
  if (opts.file) streams.push({ level, stream: createWriteStream('', { fd: openLogFile(opts.file) }) });
  return pino({ level, base: { pid: process.pid } }, multistream(streams));
}

/** Opens the log file for appending, creating its folder (often the run's --out, made later), so that a bad path fails here, clearly. */
function openLogFile(file: string): number {
  try {
    mkdirSync(dirname(file), { recursive: true });
    return openSync(file, 'a');
  } catch (err) {
    throw new GanError('CONFIG_INVALID', `cannot open the log file ${file}: ${(err as Error).message}`, { cause: err });
  }
}

/** A logger that keeps its lines as parsed objects (for tests and for assertions on log output). */
export function memoryLogger(level: LevelWithSilent = 'info'): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line.trim()) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { log: createLogger({ level, destination }), lines };
}
