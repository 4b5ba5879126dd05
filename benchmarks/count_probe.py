r"""Can the frames discriminators tell "exactly 3 balls" from "2 or 4 balls"? A supervised probe of the architecture.

    python -m benchmarks.count_probe              # ~2-4 minutes on 2 cores
    python -m benchmarks.count_probe --quick      # ~1 minute

Why: generated frames have the right balls but the wrong NUMBER of them (about 40 % have exactly 3, real
data 92 %; the rest have 2 or 4), and that fraction stays flat over 10,000 training steps. A discriminator
can only push the generator to "exactly 3" if it can represent "3 is real, 2 and 4 are fake", a
NON-monotonic function of the count. The default ("linear") head of every projected discriminator is one
convolution over the last 4×4 feature map, i.e. a logit linear in the last features; the "mlp" head adds a
hidden layer (`tfvidgan.models.ensemble_discriminator.DISCRIMINATOR_HEADS`).

The probe trains the K-discriminator ensemble (`build_frame_discriminators`, sizes of
`configs/frames_bb3_small.cfg`: 32×32×1 frames, K=8, 16 filters, synchronised batch norm) as a plain
classifier (sigmoid cross-entropy on each of the K logits) for each head on two tasks, and reports held-out
accuracy (mean over the K discriminators, and of their mean logit):

- "3 vs 2 or 4" (non-monotonic in the count): label 1 for 3-ball frames, 0 for 2- or 4-ball frames, half/half;
- "3 vs 2" (monotonic): a control both heads should solve.

Frames are rendered by `tfvidgan.data.bouncing_balls` (radius 3.2 px as in the 3-ball data, a random time
step of a 40-frame scene, so balls may touch). Chance is 0.5.

`--runs=name=MODEL_DIR,...` also reads trained frames-GAN runs (their `run_config.json` and latest
checkpoint) and reports what their discriminators learnt about the count: the mean logit (over the K
discriminators and 512 frames) for rendered frames with 1-5 balls, and for the run's own generated frames
(EMA generator, 4,000 samples) grouped by their detected ball count (`tfvidgan.metrics.balls`), with the
fraction of generated frames that have exactly 3 balls. Prints one JSON object.
"""
from __future__ import annotations

import os
import time

from absl import flags

from tfvidgan import cli
from tfvidgan.errors import ConfigError
from tfvidgan.json_report import emit, machine

FLAGS = flags.FLAGS
flags.DEFINE_bool("quick", False, "Fewer steps and frames, for a fast smoke run.")
flags.DEFINE_integer("steps", 1500, "Training steps per (head, task).")
flags.DEFINE_integer("batch_size", 64, "Frames per step.")
flags.DEFINE_integer("frames_per_count", 6000, "Training frames per ball count (plus a quarter as many held out).")
flags.DEFINE_list("heads", ["linear", "mlp"], "Discriminator heads to compare.")
flags.DEFINE_integer("num_discriminators", 8, "K.")
flags.DEFINE_integer("discriminator_filters", 16, "Filters per discriminator of the first conv.")
flags.DEFINE_list("runs", [], "name=MODEL_DIR of trained frames-GAN runs whose discriminators to read.")
flags.DEFINE_bool("probe", True, "Run the supervised probe (off: only --runs).")
flags.DEFINE_string("output", None, "Also write the JSON report here.")

SIZE = 32


def frames_with(num_balls: int, count: int, seed: int):
    """`[count, 32, 32, 1]` float32 in [-1, 1]: one random time step of `count` scenes of `num_balls` balls."""
    import numpy as np

    from tfvidgan.data.bouncing_balls import BouncingBallsConfig, generate_scenes

    config = BouncingBallsConfig(num_scenes=count, num_frames=40, num_balls=num_balls, size=SIZE, radius=3.2,
                                 shards=1, seed=seed)
    frames = generate_scenes(config, 0, count).frames  # [S, T, H, W, C]
    rng = np.random.default_rng(seed)
    picked = frames[np.arange(count), rng.integers(0, frames.shape[1], count)]
    picked = picked.astype(np.float32)
    if picked.max() > 1.5:  # uint8 rendering
        picked = picked / 127.5 - 1.0
    return picked


def task_data(negatives: tuple[int, ...], per_count: int, seed: int):
    """(frames, labels): half 3-ball frames (label 1), half split evenly over the `negatives` counts (0)."""
    import numpy as np

    positives = frames_with(3, per_count, seed)
    share = per_count // len(negatives)
    negative = np.concatenate([frames_with(n, share, seed + 1000 * n) for n in negatives])
    x = np.concatenate([positives, negative])
    y = np.concatenate([np.ones(len(positives)), np.zeros(len(negative))]).astype(np.float32)
    order = np.random.default_rng(seed).permutation(len(x))
    return x[order], y[order]


def probe(head: str, train, test, steps: int, batch_size: int, k: int, filters: int) -> dict:
    """Trains the ensemble as a classifier; held-out accuracies."""
    import numpy as np
    import tensorflow as tf

    from tfvidgan.models.ensemble_discriminator import build_frame_discriminators

    tf.keras.utils.set_random_seed(0)
    model = build_frame_discriminators((SIZE, SIZE, 1), k, base_filters=filters, normalization="sync_batch",
                                       head=head)
    optimizer = tf.keras.optimizers.Adam(2e-4, beta_1=0.5)
    x, y = train

    @tf.function
    def step(images, labels):
        with tf.GradientTape() as tape:
            logits = model(images, training=True)
            loss = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(
                tf.broadcast_to(labels[:, None], tf.shape(logits)), logits))
        optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))
        return loss

    rng = np.random.default_rng(1)
    t0 = time.perf_counter()
    for _ in range(steps):
        idx = rng.integers(0, len(x), batch_size)
        loss = step(x[idx], y[idx])
    seconds = time.perf_counter() - t0
    logits = np.concatenate([model(test[0][i:i + 256], training=False).numpy() for i in range(0, len(test[0]), 256)])
    labels = test[1][:, None] > 0.5
    per_discriminator = ((logits > 0) == labels).mean(axis=0)
    return {"accuracy_mean_over_discriminators": round(float(per_discriminator.mean()), 4),
            "accuracy_best_discriminator": round(float(per_discriminator.max()), 4),
            "accuracy_of_mean_logit": round(float(((logits.mean(axis=1, keepdims=True) > 0) == labels).mean()), 4),
            "final_train_loss": round(float(loss), 4), "train_seconds": round(seconds, 1),
            "trainable_params": int(sum(np.prod(v.shape) for v in model.trainable_variables))}


def read_run(model_dir: str, rendered: dict, num_generated: int = 4000) -> dict:
    """Mean discriminator logits of a trained run on rendered frames by ball count and on its own samples."""
    import numpy as np
    import tensorflow as tf

    from tfvidgan.metrics.balls import detect_blobs
    from tfvidgan.training.frames_task import FramesGanConfig, FramesGanTask
    from tfvidgan.training.run_lock import read_run_config

    config = read_run_config(model_dir, FramesGanConfig)
    task = FramesGanTask(config)
    task.build()
    latest = tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints"))
    if latest is None:
        raise ConfigError(f"--runs: no checkpoint under {model_dir}/checkpoints")
    tf.train.Checkpoint(**task.checkpoint_objects()).restore(latest).expect_partial()

    def mean_logits(frames):
        return np.concatenate([task.discriminators(frames[i:i + 500], training=False).numpy()
                               for i in range(0, len(frames), 500)]).mean(axis=1)

    z = tf.random.stateless_normal([num_generated, config.latent_dim], seed=[11, 0])
    fake = np.concatenate([task.sampling_generator(z[i:i + 500], training=False).numpy()
                           for i in range(0, num_generated, 500)])
    counts = np.array([b.count for b in detect_blobs(fake)])
    scores = mean_logits(fake)
    return {"checkpoint": latest, "discriminator_head": config.discriminator_head,
            "mean_logit_rendered": {f"{n}_balls": round(float(mean_logits(f).mean()), 3) for n, f in rendered.items()},
            "generated_fraction_exactly_3": round(float((counts == 3).mean()), 4),
            "mean_logit_generated_by_count": {f"{n}_balls": {"fraction": round(float((counts == n).mean()), 4),
                                                             "mean_logit": round(float(scores[counts == n].mean()), 3)}
                                              for n in range(1, 6) if (counts == n).any()}}


def main(argv):
    del argv

    steps, per_count = (300, 1500) if FLAGS.quick else (FLAGS.steps, FLAGS.frames_per_count)
    t0 = time.perf_counter()
    results = {}
    for name, negatives in (("3 vs 2 or 4", (2, 4)), ("3 vs 2", (2,))) if FLAGS.probe else ():
        train = task_data(negatives, per_count, seed=1)
        test = task_data(negatives, per_count // 4, seed=2)
        results[name] = {head: probe(head, train, test, steps, FLAGS.batch_size, FLAGS.num_discriminators,
                                     FLAGS.discriminator_filters) for head in FLAGS.heads}
    runs = {}
    if FLAGS.runs:
        rendered = {n: frames_with(n, 512, seed=7 + n) for n in range(1, 6)}
        for item in FLAGS.runs:
            name, sep, model_dir = item.partition("=")
            if not sep:
                raise ConfigError(f"--runs: expected name=MODEL_DIR, got {item!r}")
            runs[name] = read_run(model_dir, rendered)
    emit({"benchmark": "count_probe", "trained_runs": runs, "chance": 0.5, "steps": steps, "batch_size": FLAGS.batch_size,
          "train_frames_per_task": 2 * per_count, "num_discriminators": FLAGS.num_discriminators,
          "discriminator_filters": FLAGS.discriminator_filters, "results": results,
          "machine": machine(),
          "seconds": round(time.perf_counter() - t0, 1)}, FLAGS.output or "")


if __name__ == "__main__":
    cli.run(main)
