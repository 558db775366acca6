/*
 * Trains the MNIST classifier that `ganfleet eval` uses and writes it (model.json + weights.bin)
 * to packages/shared/assets/classifier/. Seeded initialisers, a seeded data order and the
 * single-threaded wasm backend make a run reproducible.
 * Run: npx tsc -b packages/cli && npx tsx scripts/train-classifier.ts [--epochs N] [--seed N] [--out DIR]
 */
import { arch, cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { type Dataset, Rng, gatherBatch, loadDataset, mixSeed } from '@ganfleet/shared/data';
import { serializeLayersModel, writeGeneratorArtifacts } from '@ganfleet/shared/model';
import { selectBackend } from '@ganfleet/shared/backends';
import { CLASSIFIER_CLASSES, buildClassifier } from '@ganfleet/shared/eval';

const { values: flags } = parseArgs({
  options: { epochs: { type: 'string', default: '6' }, seed: { type: 'string', default: '1' }, out: { type: 'string' } },
});
const epochs = Number(flags.epochs);
const seed = Number(flags.seed);
const out = flags.out ?? fileURLToPath(new URL('../packages/shared/assets/classifier/', import.meta.url));
const BATCH = 64;
/** Adam's step size, a tenth of it for the last two epochs (a fresh optimizer: tfjs cannot change it in place). */
const learningRate = (epoch: number): number => (epoch < epochs - 2 ? 1e-3 : 1e-4);

function tensors(ds: Dataset, order: Uint32Array): { x: tf.Tensor4D; y: tf.Tensor2D } {
  const x = tf.tensor4d(gatherBatch(ds, order), [order.length, ds.height, ds.width, 1]);
  const labels = Int32Array.from(order, (i) => ds.labels[i] as number);
  const y = tf.tidy(() => tf.oneHot(tf.tensor1d(labels, 'int32'), CLASSIFIER_CLASSES).toFloat() as tf.Tensor2D);
  return { x, y };
}

async function main(): Promise<void> {
  const backend = await selectBackend('wasm');
  const [train, test] = await Promise.all([loadDataset({ split: 'train' }), loadDataset({ split: 'test' })]);
  const model = buildClassifier(seed);
  const params = model.countParams();
  console.log(`backend ${backend.name} (${backend.reason}); ${params} parameters; ${epochs} epochs of ${train.count} images, batch ${BATCH}`);

  const started = performance.now();
  for (let epoch = 0; epoch < epochs; epoch++) {
    if (epoch === 0 || learningRate(epoch) !== learningRate(epoch - 1)) {
      if (epoch > 0) model.optimizer.dispose();
      model.compile({ optimizer: tf.train.adam(learningRate(epoch)), loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
    }
    // Our own seeded shuffle: fit's shuffle draws from Math.random.
    const { x, y } = tensors(train, new Rng(mixSeed(seed, epoch)).permutation(train.count));
    const h = await model.fit(x, y, { batchSize: BATCH, epochs: 1, shuffle: false, verbose: 0 });
    tf.dispose([x, y]);
    const loss = h.history['loss']?.[0] as number;
    const acc = h.history['acc']?.[0] as number;
    console.log(
      `epoch ${epoch + 1} (lr ${learningRate(epoch)}): loss ${loss.toFixed(4)}, train accuracy ${acc.toFixed(4)}, ${((performance.now() - started) / 1000).toFixed(0)} s`,
    );
  }
  const trainSeconds = (performance.now() - started) / 1000;

  const { x, y } = tensors(
    test,
    Uint32Array.from({ length: test.count }, (_, i) => i),
  );
  const correct = tf.tidy(() => tf.sum(tf.equal(tf.argMax(model.predict(x, { batchSize: 500 }) as tf.Tensor, 1), tf.argMax(y, 1))).dataSync()[0] as number);
  tf.dispose([x, y]);
  const testAccuracy = correct / test.count;
  console.log(
    `test accuracy ${(testAccuracy * 100).toFixed(2)}% (${correct}/${test.count}); training ${trainSeconds.toFixed(0)} s on ${cpus()[0]?.model ?? arch()}`,
  );

  const meta = { classifier: 'mnist', seed, epochs, batchSize: BATCH, testAccuracy, trainSeconds: Math.round(trainSeconds) };
  await writeGeneratorArtifacts(out, await serializeLayersModel(model, meta));
  model.dispose();
  console.log(`written to ${out}`);
}

await main();
