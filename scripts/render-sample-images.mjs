// Renders the sample camera images the README's examples send (examples/images/), with the push task's own
// renderer (sim/push): one held-out layout of the pusher2 table seen by its two cameras at the shipped models'
// image size. The same two frames are written under both models' camera names: front/wrist for dust-tiny,
// top/gripper for dust-push. Prints the state and instruction that go with them. Runs on the built sim package:
// `npm run examples:images`.
import { mkdirSync } from 'node:fs';
import sharp from 'sharp';
import { PushEnv, sampleLayout } from '@dust-serve/sim-push';

// A layout outside the training seeds (0-299; the fleet's held-out ones start at 1000000) at the models' size
// (models/dust-tiny/1/manifest.json and models/push-repo/dust-push/*/manifest.json: 64 x 64).
const SEED = 1_000_000;
const SIZE = 64;
const OUT = new URL('../examples/images/', import.meta.url);

const env = await PushEnv.create('pusher2');
const layout = sampleLayout(SEED, 'pusher2');
env.reset(layout);
const { state, frames } = env.observe(SIZE);
env.dispose();

mkdirSync(OUT, { recursive: true });
const names = { top: ['top', 'front'], gripper: ['gripper', 'wrist'] };
for (const [camera, files] of Object.entries(names)) {
  const png = sharp(Buffer.from(frames[camera]), { raw: { width: SIZE, height: SIZE, channels: 3 } }).png({ compressionLevel: 9 });
  for (const file of files) await png.clone().toFile(new URL(`${file}.png`, OUT).pathname);
}
process.stdout.write(JSON.stringify({ seed: SEED, state: Array.from(state, (v) => Number(v.toFixed(4))), instruction: layout.instruction }) + '\n');
