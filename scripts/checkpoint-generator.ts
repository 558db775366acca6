/*
 * G's own weights in a checkpoint, written as a generator directory that `ganfleet eval` and
 * `ganfleet sample` read: how the record's scores along a run are taken (docs/quality.md).
 *
 *   npx tsx scripts/checkpoint-generator.ts RUN/checkpoints/ckpt-NNNNNNNNN.gfck OUT_DIR
 *
 * A checkpoint keeps the last parameters the run applied (the averaged generator, for a run that
 * keeps one, is what `ganfleet fetch` serves from the resumed coordinator).
 */
import { readCheckpoint } from '@ganfleet/coordinator';
import { generatorArtifacts, getPreset, writeGeneratorArtifacts } from '@ganfleet/shared/model';
import { selectBackend } from '@ganfleet/shared/backends';

const [path, out] = process.argv.slice(2);
if (!path || !out) throw new Error('usage: checkpoint-generator.ts CHECKPOINT OUT_DIR');
await selectBackend('cpu');
const checkpoint = await readCheckpoint(path);
const { round } = checkpoint.snapshot;
await writeGeneratorArtifacts(out, await generatorArtifacts(getPreset(checkpoint.training.preset), checkpoint.snapshot.params, { round }));
process.stdout.write(`${out}: G of round ${round}\n`);
