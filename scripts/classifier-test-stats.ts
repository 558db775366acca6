/*
 * Writes packages/shared/assets/classifier/test-stats.json: the committed classifier's feature
 * statistics of the bundled MNIST test set, which every Evaluator reads instead of classifying the
 * 10 000 test images itself. Run it after retraining the classifier:
 * npx tsc -b packages/cli && npx tsx scripts/classifier-test-stats.ts
 */
import { loadDataset } from '@ganfleet/shared/data';
import { selectBackend } from '@ganfleet/shared/backends';
import { CLASSIFIER_DIR, loadClassifier, writeReferenceStats } from '@ganfleet/shared/eval';

await selectBackend('wasm');
const classifier = await loadClassifier();
await writeReferenceStats(classifier, CLASSIFIER_DIR, await loadDataset({ split: 'test' }));
classifier.dispose();
process.stdout.write(`wrote ${CLASSIFIER_DIR}test-stats.json\n`);
