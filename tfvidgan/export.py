"""Every export kind, written and read in one place: atomic, versioned SavedModels with named signatures.

A TF Serving-style layout: `base_dir/<version>/saved_model.pb`. Each version is written into a hidden
scratch directory beside it and renamed into place only when complete, so a polling model server (or a
user) never sees a half-written version, and a crash leaves no partial `<version>/`.

Export kinds (the writers are called by the tasks' `export(directory)`, the readers by the trainers,
`sample`, `evaluate` and the reports):

| kind | writer | reader | `assets.extra/` |
| --- | --- | --- | --- |
| ``frames_generator`` | `export_frames_generator` | `load_frames_generator`, `read_description` | `DESCRIPTION_FILE`, `frames_generator.keras` (+ `frames_generator_raw.keras` with EMA) |
| ``video_generator`` | `export_video_generator` | `read_description`, `load_signature` | `DESCRIPTION_FILE`, `sequence_generator.keras` |
| reconstructor | `export_reconstructor` | `load_reconstructor` | `tf_serving_warmup_requests` |

A missing export, or one of another kind than a flag needs, raises `ExportKindError` (a ConfigError)
naming the flag and the path.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from typing import Callable

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from tfvidgan.errors import ConfigError, ExportKindError, TfvidganError
from tfvidgan.json_report import write_json
from tfvidgan.models.frames_generator import render
from tfvidgan.models.reconstructor import SCENE_OUTPUT_NAME, SENSED_INPUT_NAME
from tfvidgan.models.sequence_generator import sample_sequence_noise
from tfvidgan.models.unfolded import MASK_INPUT_NAME, DefaultMask

# Files inside an export, beside saved_model.pb.
DESCRIPTION_FILE = os.path.join("assets.extra", "tfvidgan.json")  # {"kind": ..., shapes}: every generator export
FRAMES_GENERATOR_FILE = os.path.join("assets.extra", "frames_generator.keras")  # the sampled (EMA) generator
RAW_FRAMES_GENERATOR_FILE = os.path.join("assets.extra", "frames_generator_raw.keras")  # non-averaged, with EMA
FRAME_DISCRIMINATORS_FILE = os.path.join("assets.extra", "frame_discriminators.keras")  # for rejection sampling
# How a best export was picked (`tfvidgan.training.best_export`): the metric, step and the probe's sample.
SELECTION_FILE = os.path.join("assets.extra", "selection.json")
SEQUENCE_GENERATOR_FILE = os.path.join("assets.extra", "sequence_generator.keras")
WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")

FRAMES_GENERATOR = "frames_generator"
VIDEO_GENERATOR = "video_generator"
DESCRIBED_KINDS = (FRAMES_GENERATOR, VIDEO_GENERATOR)
# Second word of the stateless seed of a video export's `sample`/`sample_latents` (and of the video task's
# summaries, so that they show what the export samples for the same seed).
VIDEO_SAMPLE_STREAM = 424_242
WITH_MASK_SIGNATURE = "with_mask"
WARMUP_BATCH_SIZES = (1, 8, 32, 64)  # = allowed_batch_sizes of configs/batching_parameters.txt

_VERSION = re.compile(r"^\d+$")


def existing_versions(base_dir: str) -> list[int]:
    """Complete versions under `base_dir`, ascending (scratch directories are ignored)."""
    if not tf.io.gfile.isdir(base_dir):
        return []
    names = [n.rstrip("/") for n in tf.io.gfile.listdir(base_dir)]
    return sorted(int(n) for n in names if _VERSION.match(n))


def latest_version_dir(base_dir: str) -> str:
    """Path of the newest complete version under `base_dir`, or `base_dir` itself if it is a SavedModel."""
    if tf.io.gfile.exists(os.path.join(base_dir, "saved_model.pb")):
        return base_dir
    versions = existing_versions(base_dir)
    if not versions:
        raise TfvidganError(f"no SavedModel in {base_dir!r} (expected saved_model.pb or numbered versions)")
    return os.path.join(base_dir, str(versions[-1]))


def export_version(base_dir: str, write: Callable[[str], None], version: int | None = None) -> str:
    """Calls `write(scratch_dir)` and atomically renames the result to `base_dir/<version>`.

    `version` defaults to one more than the newest existing version (1 for the first). Returns the final
    path. If `write` fails, nothing appears under `base_dir`; scratch directories of earlier exports that
    were killed midway are removed first.
    """
    tf.io.gfile.makedirs(base_dir)
    for name in os.listdir(base_dir):  # scratch left by an export that was killed midway
        if name.startswith(".tmp-"):
            shutil.rmtree(os.path.join(base_dir, name), ignore_errors=True)
    if version is None:
        versions = existing_versions(base_dir)
        version = (versions[-1] + 1) if versions else 1
    final = os.path.join(base_dir, str(version))
    if tf.io.gfile.exists(final):
        raise TfvidganError(f"export version {final!r} already exists; refusing to overwrite it")
    scratch = os.path.join(base_dir, f".tmp-{version}-{uuid.uuid4().hex[:8]}")
    try:
        write(scratch)
        os.replace(scratch, final)  # atomic on one file system
    finally:
        if os.path.exists(scratch):
            shutil.rmtree(scratch, ignore_errors=True)
    return final


def write_selection(directory: str, selection: dict) -> str:
    """Writes `selection` (JSON-able: how this export was picked among a run's evaluated steps) as
    ``<directory>/SELECTION_FILE``; returns the file's path."""
    path = os.path.join(directory, SELECTION_FILE)
    write_json(path, selection, indent=1)
    return path


def read_selection(path: str) -> dict | None:
    """The selection record of the export at `path` (a base directory, whose newest version is read, or one
    version), or None for an export that was not picked by `--best_metric`."""
    file = os.path.join(latest_version_dir(path), SELECTION_FILE)
    if not os.path.isfile(file):
        return None
    with open(file) as f:
        return json.load(f)


def selection_bias(selection: dict | None, seed: int) -> str | None:
    """A warning when an evaluation draw with `seed` re-uses the fixed sample that picked this export (the
    in-training probe's, same seed: its latents are a prefix of the draw's), else None.

    A step picked as the best on one sample scores better on that sample than on a fresh one; evaluate a
    best export on other seeds for an unbiased number."""
    probe = (selection or {}).get("probe") or {}
    if "seed" not in probe or int(probe["seed"]) != int(seed):
        return None
    return (f"selection bias: this export is the step that scored best on --best_metric={selection.get('metric')} "
            f"over the in-training probe's fixed sample of seed {probe['seed']}, and this draw uses the same "
            f"seed (its samples include the probe's); evaluate with another --seed for an unbiased number")


def selection_of_draw(path: str, seed: int) -> tuple[dict | None, str | None]:
    """`(read_selection(path), selection_bias(...))` for an evaluation draw of the export at `path` with
    `seed`; the bias warning, when there is one, is also logged. For the evaluate reports."""
    selection = read_selection(path)
    bias = selection_bias(selection, seed)
    if bias:
        logging.warning("%s: %s", path, bias)
    return selection, bias


def write_archive(directory: str, tracked: list, endpoints: dict[str, tuple[Callable, list]]) -> None:
    """Writes a SavedModel whose signatures have named inputs.

    Args:
      directory: output directory (must not exist).
      tracked: Keras models / layers whose variables the endpoints use.
      endpoints: signature name → (function, [tf.TensorSpec with names]). The function returns a dict of
        named outputs. The first endpoint is also exported as `serving_default`.
    """
    archive = keras.export.ExportArchive()
    for obj in tracked:
        archive.track(obj)
    first = None
    for name, (fn, specs) in endpoints.items():
        archive.add_endpoint(name=name, fn=fn, input_signature=specs)
        first = first or (fn, specs)
    if "serving_default" not in endpoints:
        archive.add_endpoint(name="serving_default", fn=first[0], input_signature=first[1])
    archive.write_out(directory, verbose=False)


def load_signature(export_dir: str, name: str, flag: str = "export_dir", inputs: set | None = None):
    """Signature `name` of the newest SavedModel under `export_dir`.

    Raises a ConfigError naming `--flag` if the signature is absent or (with `inputs`) does not take
    exactly those named inputs — i.e. the export is of another kind.

    The returned function keeps the loaded SavedModel alive (attribute `saved_model`): it holds its variables
    only by weak reference, so without it a gradient through the signature (e.g. inverting a generator) fails
    once the loader has returned ("Called a function referencing variables which have been deleted").
    """
    path = latest_version_dir(export_dir)
    loaded = tf.saved_model.load(path)
    signature = loaded.signatures.get(name)
    if signature is not None:
        signature.saved_model = loaded
    found = set(signature.structured_input_signature[1]) if signature is not None else None
    if signature is None or (inputs is not None and found != set(inputs)):
        what = (f"has no {name!r} signature" if signature is None
                else f"has a {name!r} signature taking {sorted(found)}")
        raise ExportKindError(f"--{flag}={export_dir!r}: SavedModel {path!r} {what}, not one taking "
                          f"{sorted(inputs or [])}; is it the right kind of export?")
    return signature


def check_trailing_shape(tensor: tf.Tensor, expected: tuple, name: str, described: str) -> tf.Tensor:
    """In a serving function: `tensor`, checked to have `shape[1:] == expected` BEFORE anything uses it
    (else the error names the input: "<name> must have shape <described>")."""
    check = tf.debugging.assert_equal(tf.shape(tensor)[1:], tf.constant(expected, tf.int32),
                                      message=f"{name} must have shape {described}")
    with tf.control_dependencies([check]):
        return tf.identity(tensor)


def write_warmup_requests(directory: str, requests: list[tuple[str, dict]], model_name: str = "") -> str:
    """Writes TF Serving's warm-up file ``<directory>/assets.extra/tf_serving_warmup_requests``.

    Each request becomes one `tensorflow_serving.apis.prediction_log_pb2.PredictionLog` (a ``predict_log``
    holding a `PredictRequest`) serialised into a TFRecord file, the format TF Serving replays when it
    loads a version. Call it on the SavedModel directory before it is renamed into place.

    Args:
      directory: a written SavedModel directory.
      requests: ``[(signature name, {input name: numpy array})]``; TF Serving reads at most 1000 records.
      model_name: the ``model_spec.name`` of the requests (TF Serving ignores it while warming up).

    Returns:
      The file's path.
    """
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    if len(requests) > 1000:
        raise TfvidganError(f"{len(requests)} warm-up requests; TF Serving reads at most 1000")
    path = os.path.join(directory, WARMUP_FILE)
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.TFRecordWriter(path) as writer:
        for signature_name, inputs in requests:
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(name=model_name, signature_name=signature_name))
            for name, value in inputs.items():
                request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
            log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())
    return path


# -- descriptions -------------------------------------------------------------------------------------


def write_description(directory: str, description: dict) -> str:
    """Writes `description` (a JSON-able dict with a ``"kind"`` in `DESCRIBED_KINDS`) as
    ``<directory>/DESCRIPTION_FILE``; returns the file's path."""
    if description.get("kind") not in DESCRIBED_KINDS:
        raise ConfigError(f"export description kind {description.get('kind')!r} is not one of {DESCRIBED_KINDS}")
    path = os.path.join(directory, DESCRIPTION_FILE)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(description, f, indent=2)
    return path


def read_description(path: str, kind: str, flag: str = "export_dir") -> tuple[str, dict]:
    """`(version directory, description dict)` of the export at `path`, checked to be of `kind`.

    Args:
      path: an export base directory (its newest version is read) or one version directory.
      kind: the kind the caller needs, one of `DESCRIBED_KINDS`.
      flag: the flag `path` came from, named in errors.

    Raises:
      ExportKindError: no SavedModel at `path`, no description file, or a description of another kind.
    """
    what = kind.replace("_", "-")
    try:
        directory = latest_version_dir(path)
    except TfvidganError as e:
        raise ExportKindError(f"--{flag}={path!r} is not a {what} export: {e}") from e
    description_path = os.path.join(directory, DESCRIPTION_FILE)
    if not os.path.isfile(description_path):
        raise ExportKindError(f"--{flag}={path!r}: {directory!r} is not a {what} export (missing {DESCRIPTION_FILE})")
    with open(description_path) as f:
        description = json.load(f)
    if description.get("kind") != kind:
        raise ExportKindError(f"--{flag}={path!r}: {description_path} describes a {description.get('kind')!r}, "
                              f"not a {kind}; is it the right kind of export?")
    return directory, description


# -- frames generator ---------------------------------------------------------------------------------


def export_frames_generator(generator: keras.Model, description: dict, directory: str,
                            raw_generator: keras.Model | None = None,
                            discriminators: keras.Model | None = None) -> None:
    """SavedModel with signatures `generate(z [N, Z] float32) → {"frames": [N, H, W, C] in [-1, 1]}`
    (also `serving_default`) and `sample(num_samples int32, seed int32) → {"frames", "z"}` drawing
    z ~ N(0, I); plus the Keras model and the JSON description (kind ``frames_generator``, `latent_dim`,
    `image_size`, `channels`) under `assets.extra/`.

    `generator` is what users sample (the EMA generator when EMA is on); `raw_generator`, if given, is
    the non-averaged one, saved as `assets.extra/frames_generator_raw.keras` for side-by-side evaluation.
    `discriminators`, if given, are the run's K projected discriminators (`[N, H, W, C]` → logits `[N, K]`),
    saved as `assets.extra/frame_discriminators.keras` for discriminator rejection sampling
    (`tfvidgan.rejection`); the description then records `discriminators: K`.
    """
    latent_dim = description["latent_dim"]

    def generate(z):
        z = check_trailing_shape(z, (latent_dim,), "z", f"[batch, {latent_dim}] (latent size {latent_dim})")
        return {"frames": tf.cast(generator(z, training=False), tf.float32)}

    def sample(num_samples, seed):
        z = tf.random.stateless_normal(tf.stack([num_samples, latent_dim]), seed=tf.stack([seed, 0]))
        return {"frames": tf.cast(generator(z, training=False), tf.float32), "z": z}

    write_archive(directory, [generator], {
        "generate": (generate, [tf.TensorSpec([None, latent_dim], tf.float32, name="z")]),
        "sample": (sample, [tf.TensorSpec([], tf.int32, name="num_samples"),
                            tf.TensorSpec([], tf.int32, name="seed")]),
    })
    os.makedirs(os.path.join(directory, "assets.extra"), exist_ok=True)
    generator.save(os.path.join(directory, FRAMES_GENERATOR_FILE))
    if raw_generator is not None:
        raw_generator.save(os.path.join(directory, RAW_FRAMES_GENERATOR_FILE))
    extra = {}
    if discriminators is not None:
        discriminators.save(os.path.join(directory, FRAME_DISCRIMINATORS_FILE))
        extra["discriminators"] = int(discriminators.output_shape[-1])
    write_description(directory, dict(description, kind=FRAMES_GENERATOR,
                                      weights="ema" if raw_generator is not None else "raw", **extra))


def load_frames_generator(path: str, weights: str = "default",
                          flag: str = "frames_generator") -> tuple[keras.Model, dict]:
    """Loads a frames generator written by `export_frames_generator`: `(Keras model, description)`.

    The model maps `[N, Z]` → `[N, H, W, C]` in [-1, 1]. `weights`: "default" (what the export samples
    with: the EMA weights when the run used EMA) or "raw" (the non-averaged weights; for an export
    without EMA, the same model). `description["weights"]` says which one was loaded ("ema" | "raw").
    An export of another kind raises `ExportKindError` naming `--flag`.
    """
    if weights not in ("default", "raw"):
        raise ConfigError(f"load_frames_generator: weights must be 'default' or 'raw', got {weights!r}")
    directory, description = read_description(path, FRAMES_GENERATOR, flag)
    if not os.path.exists(os.path.join(directory, FRAMES_GENERATOR_FILE)):
        raise ExportKindError(f"--{flag}={path!r}: {directory!r} is not a frames-generator export "
                              f"(missing {FRAMES_GENERATOR_FILE})")
    description.setdefault("weights", "raw")
    file = FRAMES_GENERATOR_FILE
    if weights == "raw" and os.path.exists(os.path.join(directory, RAW_FRAMES_GENERATOR_FILE)):
        file, description = RAW_FRAMES_GENERATOR_FILE, dict(description, weights="raw")
    return keras.models.load_model(os.path.join(directory, file), compile=False), description


def load_frame_discriminators(path: str, flag: str = "export_dir") -> keras.Model:
    """The K projected discriminators saved with a frames-generator export (`[N, H, W, C]` in [-1, 1] →
    logits `[N, K]`). Raises `ExportKindError` naming `--flag` when the export has none (written before
    tfvidgan saved them, or not a frames-generator export)."""
    from tfvidgan.models import ensemble_discriminator  # noqa: F401 (registers the custom layers for loading)

    directory, _ = read_description(path, FRAMES_GENERATOR, flag)
    file = os.path.join(directory, FRAME_DISCRIMINATORS_FILE)
    if not os.path.exists(file):
        raise ExportKindError(f"--{flag}={path!r}: {directory!r} has no discriminators ({FRAME_DISCRIMINATORS_FILE}; "
                              f"exports written before they were saved have none): retrain or re-export it to "
                              f"use rejection sampling")
    return keras.models.load_model(file, compile=False)


# -- video generator ----------------------------------------------------------------------------------


def export_video_generator(sequence_generator, frames_generator, description: dict, directory: str) -> None:
    """SavedModel (self-contained: includes the FG) with signatures
    `sample(num_samples, num_frames, seed) → {"videos" [N,T,H,W,C] in [-1,1], "latents" [N,T,Z]}`,
    `sample_latents(num_samples, num_frames, seed) → {"latents"}` (to render with another FG),
    `render(latents [N, T, Z]) → {"videos"}` (any trajectory, e.g. baselines, through the same FG),
    and `generate(noise [N, noise_dim], step_noise [N, T, step_noise_dim]) → {"videos", "latents"}`
    (= serving_default); plus the Keras sequence generator and the JSON description (kind
    ``video_generator``, `latent_dim`, `noise_dim`, `step_noise_dim`, ...) under `assets.extra/`."""
    noise_dim, step_noise_dim = description["noise_dim"], description["step_noise_dim"]

    def latents_for(num_samples, num_frames, seed):
        noise = sample_sequence_noise(num_samples, num_frames,
                                      tf.stack([tf.cast(seed, tf.int64), VIDEO_SAMPLE_STREAM]),
                                      noise_dim, step_noise_dim)
        return sequence_generator(noise, training=False)

    def generate(noise, step_noise):
        noise = check_trailing_shape(noise, (noise_dim,), "noise", f"[batch, {noise_dim}]")
        with tf.control_dependencies([tf.debugging.assert_equal(
                tf.shape(step_noise)[2], step_noise_dim,
                message=f"step_noise must have shape [batch, frames, {step_noise_dim}]")]):
            step_noise = tf.identity(step_noise)
        latents = sequence_generator({"noise": noise, "step_noise": step_noise}, training=False)
        return {"videos": render(frames_generator, latents), "latents": latents}

    def sample(num_samples, num_frames, seed):
        latents = latents_for(num_samples, num_frames, seed)
        return {"videos": render(frames_generator, latents), "latents": latents}

    def sample_latents(num_samples, num_frames, seed):
        return {"latents": latents_for(num_samples, num_frames, seed)}

    def render_latents(latents):
        with tf.control_dependencies([tf.debugging.assert_equal(
                tf.shape(latents)[2], description["latent_dim"],
                message=f"latents must have shape [batch, frames, {description['latent_dim']}]")]):
            latents = tf.identity(latents)
        return {"videos": render(frames_generator, latents)}

    scalar = lambda name: tf.TensorSpec([], tf.int32, name=name)  # noqa: E731
    write_archive(directory, [sequence_generator, frames_generator], {
        "generate": (generate, [tf.TensorSpec([None, noise_dim], tf.float32, name="noise"),
                                tf.TensorSpec([None, None, step_noise_dim], tf.float32, name="step_noise")]),
        "sample": (sample, [scalar("num_samples"), scalar("num_frames"), scalar("seed")]),
        "sample_latents": (sample_latents, [scalar("num_samples"), scalar("num_frames"), scalar("seed")]),
        "render": (render_latents, [tf.TensorSpec([None, None, description["latent_dim"]], tf.float32,
                                                  name="latents")]),
    })
    os.makedirs(os.path.join(directory, "assets.extra"), exist_ok=True)
    sequence_generator.save(os.path.join(directory, SEQUENCE_GENERATOR_FILE))
    write_description(directory, dict(description, kind=VIDEO_GENERATOR))


# -- reconstructor (TF Serving) -----------------------------------------------------------------------


def export_reconstructor(reconstructor, directory: str, default_mask=None,
                         warmup_batch_sizes: tuple[int, ...] = WARMUP_BATCH_SIZES) -> None:
    """TF Serving SavedModel of a reconstructor, with warm-up requests.

    Signatures (all return ``{"scene": [B, T, H, W, 1] float32 in [0, 1]}``):

    * ``serving_default(sensed_image [B, H+T−1, W, 1] float32)``: the U-Net, or the unfolded net with
      ``default_mask`` (the training camera's ``[H, W]`` mask, stored in the SavedModel as variable ``mask``);
    * unfolded net only: ``with_mask(sensed_image [B, H+T−1, W, 1], mask [B, H, W] float32)`` — another
      camera's mask (one per example; repeat it for a batch). TF signatures cannot have optional inputs,
      hence two signatures.

    Inputs are checked before use (an `InvalidArgumentError` naming the input): ``sensed_image`` of another
    shape, a ``mask`` not ``[B, H, W]`` for the same ``B``, or a ``mask`` with NaN/inf.
    ``assets.extra/tf_serving_warmup_requests`` holds one `PredictionLog` per signature and batch size in
    ``warmup_batch_sizes`` (`write_warmup_requests`), so TF Serving warms up on load.
    """
    sensed_shape = tuple(int(d) for d in reconstructor.inputs[0].shape[1:])
    described = f"[batch, {sensed_shape[0]}, {sensed_shape[1]}, 1] (H + T - 1 rows, W columns) for this model"
    sensed_spec = tf.TensorSpec([None, *sensed_shape], tf.float32, name=SENSED_INPUT_NAME)
    zeros = {b: np.zeros((b, *sensed_shape), np.float32) for b in warmup_batch_sizes}
    if default_mask is None:
        def serve(sensed_image):
            sensed_image = check_trailing_shape(sensed_image, sensed_shape, SENSED_INPUT_NAME, described)
            return {SCENE_OUTPUT_NAME: reconstructor(sensed_image, training=False)}

        write_archive(directory, [reconstructor], {"serving_default": (serve, [sensed_spec])})
        write_warmup_requests(directory, [("serving_default", {SENSED_INPUT_NAME: z}) for z in zeros.values()])
        return
    mask_shape = tuple(int(d) for d in reconstructor.inputs[1].shape[1:])
    default = DefaultMask(default_mask, name="default_mask")
    if tuple(default.mask.shape) != mask_shape:
        raise ConfigError(f"default mask shape {tuple(default.mask.shape)} does not match the model's {mask_shape}")

    def serve(sensed_image):
        sensed_image = check_trailing_shape(sensed_image, sensed_shape, SENSED_INPUT_NAME, described)
        return {SCENE_OUTPUT_NAME: reconstructor({SENSED_INPUT_NAME: sensed_image,
                                                  MASK_INPUT_NAME: default(sensed_image)}, training=False)}

    def serve_with_mask(sensed_image, mask):
        sensed_image = check_trailing_shape(sensed_image, sensed_shape, SENSED_INPUT_NAME, described)
        mask = check_trailing_shape(mask, mask_shape, MASK_INPUT_NAME,
                                    f"[batch, {mask_shape[0]}, {mask_shape[1]}] (H, W) for this model")
        checks = [tf.debugging.assert_equal(tf.shape(mask)[0], tf.shape(sensed_image)[0],
                                            message="mask must have the same batch size as sensed_image"),
                  tf.debugging.assert_all_finite(mask, message="mask must be finite (it has NaN or inf values)")]
        with tf.control_dependencies(checks):
            mask = tf.identity(mask)
        return {SCENE_OUTPUT_NAME: reconstructor({SENSED_INPUT_NAME: sensed_image, MASK_INPUT_NAME: mask},
                                                 training=False)}

    mask_spec = tf.TensorSpec([None, *mask_shape], tf.float32, name=MASK_INPUT_NAME)
    write_archive(directory, [reconstructor, default], {"serving_default": (serve, [sensed_spec]),
                                                        WITH_MASK_SIGNATURE: (serve_with_mask, [sensed_spec, mask_spec])})
    mask = np.asarray(default_mask, np.float32)
    requests = [("serving_default", {SENSED_INPUT_NAME: z}) for z in zeros.values()]
    requests += [(WITH_MASK_SIGNATURE, {SENSED_INPUT_NAME: z, MASK_INPUT_NAME: np.broadcast_to(mask, (b, *mask.shape))})
                 for b, z in zeros.items()]
    write_warmup_requests(directory, requests)


def load_reconstructor(export_dir: str, flag: str = "export_dir"):
    """`(loaded SavedModel, version directory)` of a reconstructor export written by `export_reconstructor`.

    The SavedModel's ``serving_default`` takes ``sensed_image`` `[B, H+T−1, W, 1]` float32 and returns
    ``scene`` `[B, T, H, W, 1]` float32 in [0, 1]; an unfolded net also has ``with_mask``.

    Raises:
      ExportKindError: no ``serving_default``, or one of another kind of export (naming `--flag`).
    """
    path = latest_version_dir(export_dir)
    loaded = tf.saved_model.load(path)
    if "serving_default" not in loaded.signatures:
        raise ExportKindError(f"--{flag}={export_dir!r}: SavedModel {path!r} has no 'serving_default' signature "
                              f"(it has {sorted(loaded.signatures)}); is it a reconstructor export?")
    signature = loaded.signatures["serving_default"]
    inputs, outputs = signature.structured_input_signature[1], signature.structured_outputs
    if SENSED_INPUT_NAME not in inputs or SCENE_OUTPUT_NAME not in outputs:
        raise ExportKindError(f"--{flag}={export_dir!r}: serving_default of {path!r} takes {sorted(inputs)} and "
                              f"returns {sorted(outputs)}, expected {SENSED_INPUT_NAME!r} -> {SCENE_OUTPUT_NAME!r}; "
                              f"is it a reconstructor export?")
    return loaded, path
