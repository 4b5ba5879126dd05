"""Atomic, versioned SavedModel exports with named signatures.

A TF Serving-style layout: `base_dir/<version>/saved_model.pb`. Each version is written into a hidden
scratch directory beside it and renamed into place only when complete, so a polling model server (or a
user) never sees a half-written version, and a crash leaves no partial `<version>/`.
"""
from __future__ import annotations

import os
import re
import shutil
import uuid
from typing import Callable

import keras
import tensorflow as tf

from tfvidgan.errors import TfvidganError

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
    """
    from tfvidgan.errors import ConfigError
    path = latest_version_dir(export_dir)
    loaded = tf.saved_model.load(path)
    signature = loaded.signatures.get(name)
    found = set(signature.structured_input_signature[1]) if signature is not None else None
    if signature is None or (inputs is not None and found != set(inputs)):
        what = (f"has no {name!r} signature" if signature is None
                else f"has a {name!r} signature taking {sorted(found)}")
        raise ConfigError(f"--{flag}={export_dir!r}: SavedModel {path!r} {what}, not one taking "
                          f"{sorted(inputs or [])}; is it the right kind of export?")
    return signature


def check_trailing_shape(tensor: tf.Tensor, expected: tuple, name: str, described: str) -> tf.Tensor:
    """In a serving function: `tensor`, checked to have `shape[1:] == expected` BEFORE anything uses it
    (else the error names the input: "<name> must have shape <described>")."""
    check = tf.debugging.assert_equal(tf.shape(tensor)[1:], tf.constant(expected, tf.int32),
                                      message=f"{name} must have shape {described}")
    with tf.control_dependencies([check]):
        return tf.identity(tensor)


WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")


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
