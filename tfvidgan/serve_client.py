"""Command-line client for a CUP reconstructor served by TensorFlow Serving (REST API).

    python -m tfvidgan.serve_client --server=http://localhost:8501 --model=cup_reconstructor \\
        --input=sensed.npy --output=recon.npz

1. ``GET  {server}/v1/models/{model}[/versions/{v}]/metadata``: reads the signature's input shape
   (e.g. ``[-1, H + T − 1, W, 1]`` for input ``sensed_image``) and output shape ``[-1, T, H, W, 1]``;
2. loads ``--input`` and checks it against that shape BEFORE sending (a mismatch raises a
   `DatasetError` naming the file and both shapes);
3. ``POST {server}/v1/models/{model}[/versions/{v}]:predict`` with ``{"signature_name": ...,
   "inputs": {"sensed_image": [...]}}`` (or the row format ``{"instances": [...]}`` with
   ``--request_format=instances``);
4. writes the output.

Input files:
  * ``.npy``: float array ``[H', W]``, ``[H', W, 1]`` or ``[B, H', W, 1]`` in sensed units (as in the
    CUP pairs dataset: a bright pixel in one frame behind an open mask pixel adds 1.0);
  * ``.png``: one grayscale (8- or 16-bit; colour is converted to luminance) sensed image; pixel
    codes are mapped linearly so that white = ``--png_full_scale`` (default: ``T``, the number of
    frames, read from the served model's output shape).
Output files:
  * ``.npz``: array ``scene`` ``[B, T, H, W, 1]`` float32 in ``[0, 1]``;
  * ``.png``: a strip, one row of ``T`` frames per sample (``[B·H, T·W]`` 8-bit grayscale).

Only the standard library (`urllib`) is used for HTTP.
"""

from __future__ import annotations

import dataclasses
import json
import os
import urllib.error
import urllib.request

import numpy as np

from tfvidgan.errors import ConfigError, DatasetError

__all__ = [
    "ServeError",
    "ClientConfig",
    "get_model_metadata",
    "signature_shapes",
    "load_sensed",
    "check_input_shape",
    "predict",
    "save_reconstruction",
    "run",
    "main",
]

DEFAULT_INPUT_NAME = "sensed_image"
DEFAULT_SIGNATURE = "serving_default"


class ServeError(RuntimeError):
    """The server is unreachable, answered with an error, or its answer cannot be understood."""


@dataclasses.dataclass(frozen=True)
class ClientConfig:
    """One request (field names are the flag names).

    Attributes:
      server: base URL of TF Serving's REST port, e.g. ``http://localhost:8501``.
      model: served model name.
      input: ``.npy`` or ``.png`` sensed image(s). output: ``.npz`` or ``.png`` (strip).
      version: model version (``None`` = the server's latest).
      signature_name: signature to call.
      input_name: the signature's input tensor name.
      request_format: ``"inputs"`` (columnar) or ``"instances"`` (row).
      png_full_scale: sensed value of a white PNG pixel (``None`` = ``T`` from the model metadata).
      timeout: seconds per HTTP request.
    """

    server: str
    model: str
    input: str
    output: str
    version: int | None = None
    signature_name: str = DEFAULT_SIGNATURE
    input_name: str = DEFAULT_INPUT_NAME
    request_format: str = "inputs"
    png_full_scale: float | None = None
    timeout: float = 60.0

    def validate(self) -> None:
        """Raises `ConfigError` naming the bad flag."""
        if not self.server.startswith(("http://", "https://")):
            raise ConfigError(f"--server={self.server!r} must be an http:// or https:// URL")
        if not self.model:
            raise ConfigError("--model is required")
        if os.path.splitext(self.input)[1].lower() not in (".npy", ".png"):
            raise ConfigError(f"--input={self.input!r} must be a .npy or .png file")
        if os.path.splitext(self.output)[1].lower() not in (".npz", ".png"):
            raise ConfigError(f"--output={self.output!r} must be a .npz or .png file")
        if self.request_format not in ("inputs", "instances"):
            raise ConfigError(f"--request_format={self.request_format!r} must be 'inputs' or 'instances'")
        if self.png_full_scale is not None and self.png_full_scale <= 0:
            raise ConfigError(f"--png_full_scale must be > 0, got {self.png_full_scale}")
        if self.timeout <= 0:
            raise ConfigError(f"--timeout must be > 0, got {self.timeout}")


# -- HTTP ---------------------------------------------------------------------------------------


def _model_url(server: str, model: str, version: int | None) -> str:
    url = f"{server.rstrip('/')}/v1/models/{model}"
    return url if version is None else f"{url}/versions/{int(version)}"


def _request_json(url: str, body: dict | None, timeout: float) -> dict:
    data = None if body is None else json.dumps(body).encode("utf-8")
    request = urllib.request.Request(url, data=data, method="GET" if body is None else "POST")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            payload = response.read()
    except urllib.error.HTTPError as e:
        detail = e.read().decode("utf-8", "replace")
        try:
            detail = json.loads(detail).get("error", detail)
        except (ValueError, AttributeError):
            pass
        raise ServeError(f"{url}: HTTP {e.code}: {detail}") from e
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise ServeError(f"{url}: cannot reach the server ({reason})") from e
    try:
        answer = json.loads(payload)
    except ValueError as e:
        raise ServeError(f"{url}: answer is not JSON: {payload[:200]!r}") from e
    if not isinstance(answer, dict):
        raise ServeError(f"{url}: answer is not a JSON object")
    return answer


def get_model_metadata(server: str, model: str, *, version: int | None = None, timeout: float = 60.0) -> dict:
    """The JSON of ``GET /v1/models/{model}[/versions/{v}]/metadata`` (raises `ServeError`)."""
    return _request_json(_model_url(server, model, version) + "/metadata", None, timeout)


def _dims(tensor_info: dict) -> list[int | None]:
    shape = tensor_info.get("tensor_shape", {})
    if shape.get("unknown_rank"):
        raise ServeError(f"tensor {tensor_info.get('name', '?')} has unknown rank in the model metadata")
    dims = [int(d.get("size", -1)) for d in shape.get("dim", [])]  # sizes are JSON strings in TF Serving
    return [None if d < 0 else d for d in dims]


def signature_shapes(metadata: dict, signature_name: str = DEFAULT_SIGNATURE) -> tuple[dict, dict]:
    """``({input name: shape}, {output name: shape})`` of a signature, unknown dims as ``None``.

    Raises:
      ServeError: the metadata has no such signature (the message lists the available ones).
    """
    try:
        signatures = metadata["metadata"]["signature_def"]["signature_def"]
    except (KeyError, TypeError) as e:
        raise ServeError("model metadata has no metadata.signature_def.signature_def") from e
    if signature_name not in signatures:
        raise ServeError(f"model has no signature {signature_name!r}; available: {sorted(signatures)}")
    sig = signatures[signature_name]
    inputs = {name: _dims(info) for name, info in sig.get("inputs", {}).items()}
    outputs = {name: _dims(info) for name, info in sig.get("outputs", {}).items()}
    return inputs, outputs


def _parse_predictions(answer: dict, request_format: str, output_names: list[str], url: str) -> dict[str, np.ndarray]:
    if request_format == "inputs":
        if "outputs" not in answer:
            raise ServeError(f"{url}: answer has no 'outputs' field: {sorted(answer)}")
        outputs = answer["outputs"]
        if isinstance(outputs, dict):
            return {name: np.asarray(value, np.float32) for name, value in outputs.items()}
        if len(output_names) != 1:
            raise ServeError(f"{url}: one unnamed output but the signature has {output_names}")
        return {output_names[0]: np.asarray(outputs, np.float32)}
    if "predictions" not in answer:
        raise ServeError(f"{url}: answer has no 'predictions' field: {sorted(answer)}")
    rows = answer["predictions"]
    if rows and isinstance(rows[0], dict):
        return {name: np.asarray([row[name] for row in rows], np.float32) for name in rows[0]}
    if len(output_names) != 1:
        raise ServeError(f"{url}: one unnamed output but the signature has {output_names}")
    return {output_names[0]: np.asarray(rows, np.float32)}


def predict(
    server: str,
    model: str,
    sensed: np.ndarray,
    *,
    output_names: list[str],
    input_name: str = DEFAULT_INPUT_NAME,
    signature_name: str = DEFAULT_SIGNATURE,
    version: int | None = None,
    request_format: str = "inputs",
    timeout: float = 60.0,
) -> dict[str, np.ndarray]:
    """Calls ``:predict`` with ``sensed`` ``[B, H + T − 1, W, 1]`` float32.

    Args:
      output_names: the signature's output names (from `signature_shapes`), used when the server
        returns a single unnamed output.

    Returns:
      ``{output name: float32 array}``, e.g. ``{"scene": [B, T, H, W, 1]}``.

    Raises:
      ServeError: HTTP or protocol failure (the message names the URL and the server's error).
    """
    url = _model_url(server, model, version) + ":predict"
    values = np.asarray(sensed, np.float32).tolist()
    if request_format == "inputs":
        body = {"signature_name": signature_name, "inputs": {input_name: values}}
    else:
        body = {"signature_name": signature_name, "instances": [{input_name: row} for row in values]}
    return _parse_predictions(_request_json(url, body, timeout), request_format, output_names, url)


# -- files --------------------------------------------------------------------------------------


def load_sensed(path: str, *, png_full_scale: float | None = None) -> np.ndarray:
    """Reads sensed image(s) -> ``[B, H', W, 1]`` float32 (see the module docstring for formats).

    Raises:
      DatasetError: the file is missing, unreadable, of an unknown type, not finite, or of a rank
        that cannot be a sensed image; the message names the file.
    """
    if not os.path.isfile(path):
        raise DatasetError(f"{path}: input file not found")
    ext = os.path.splitext(path)[1].lower()
    if ext == ".npy":
        try:
            array = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise DatasetError(f"{path}: cannot read as .npy: {e}") from e
        if not np.issubdtype(array.dtype, np.number):
            raise DatasetError(f"{path}: expected a numeric array, got dtype {array.dtype}")
        array = array.astype(np.float32)
    elif ext == ".png":
        if png_full_scale is None:
            raise ConfigError(f"{path}: a PNG input needs --png_full_scale (the model metadata did not give T)")
        from PIL import Image

        try:
            with Image.open(path) as image:
                if image.mode in ("I;16", "I;16B", "I;16L", "I"):
                    codes, max_code = np.asarray(image, np.float64), 65535.0
                else:
                    codes, max_code = np.asarray(image.convert("L"), np.float64), 255.0
        except OSError as e:
            raise DatasetError(f"{path}: cannot read as PNG: {e}") from e
        array = (codes / max_code * png_full_scale).astype(np.float32)
    else:
        raise DatasetError(f"{path}: unknown input type {ext!r} (expected .npy or .png)")
    if array.ndim == 2:
        array = array[None, ..., None]
    elif array.ndim == 3:
        array = array[None]
    if array.ndim != 4:
        raise DatasetError(f"{path}: array of shape {array.shape} is not [H', W], [H', W, 1] or [B, H', W, 1]")
    if not np.all(np.isfinite(array)):
        raise DatasetError(f"{path}: contains NaN or infinite values")
    return array


def check_input_shape(array: np.ndarray, expected: list[int | None], path: str, *, model: str, input_name: str) -> None:
    """Raises `DatasetError` naming ``path`` if ``array.shape`` does not fit ``expected`` (None = any)."""
    ok = len(array.shape) == len(expected) and all(e is None or e == a for a, e in zip(array.shape, expected))
    if not ok:
        shown = ["?" if e is None else e for e in expected]
        raise DatasetError(
            f"{path}: sensed image(s) of shape {list(array.shape)} do not fit input {input_name!r} of model "
            f"{model!r}, which expects {shown} (? = any)"
        )


def save_reconstruction(path: str, scenes: np.ndarray) -> None:
    """Writes ``scenes`` ``[B, T, H, W, 1]`` in ``[0, 1]`` as ``.npz`` (array ``scene``) or a ``.png`` strip."""
    scenes = np.asarray(scenes, np.float32)
    if scenes.ndim != 5:
        raise ServeError(f"model output has shape {scenes.shape}, expected [B, T, H, W, 1]")
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    ext = os.path.splitext(path)[1].lower()
    if ext == ".npz":
        np.savez_compressed(path, scene=scenes)
    elif ext == ".png":
        from PIL import Image

        batch, frames, height, width = scenes.shape[:4]
        strip = scenes[..., 0].transpose(0, 2, 1, 3).reshape(batch * height, frames * width)
        Image.fromarray(np.round(np.clip(strip, 0.0, 1.0) * 255.0).astype(np.uint8), mode="L").save(path)
    else:
        raise ConfigError(f"--output={path!r} must be a .npz or .png file")


# -- the whole request ----------------------------------------------------------------------------


def run(config: ClientConfig) -> np.ndarray:
    """Metadata -> load and check input -> predict -> write output. Returns the scenes ``[B, T, H, W, 1]``."""
    config.validate()
    metadata = get_model_metadata(config.server, config.model, version=config.version, timeout=config.timeout)
    inputs, outputs = signature_shapes(metadata, config.signature_name)
    if config.input_name not in inputs:
        raise ConfigError(
            f"--input_name={config.input_name!r} is not an input of {config.model!r}/{config.signature_name}; "
            f"inputs: {sorted(inputs)}"
        )
    full_scale = config.png_full_scale
    if full_scale is None:
        scene_shapes = [s for s in outputs.values() if len(s) == 5 and s[1] is not None]
        if len(scene_shapes) == 1:
            full_scale = float(scene_shapes[0][1])
    sensed = load_sensed(config.input, png_full_scale=full_scale)
    check_input_shape(sensed, inputs[config.input_name], config.input, model=config.model, input_name=config.input_name)
    results = predict(
        config.server,
        config.model,
        sensed,
        output_names=sorted(outputs),
        input_name=config.input_name,
        signature_name=config.signature_name,
        version=config.version,
        request_format=config.request_format,
        timeout=config.timeout,
    )
    if len(results) == 1:
        scenes = next(iter(results.values()))
    elif "scene" in results:
        scenes = results["scene"]
    else:
        raise ServeError(f"model {config.model!r} returned outputs {sorted(results)}; expected one named 'scene'")
    save_reconstruction(config.output, scenes)
    return scenes


def define_flags() -> None:
    """Defines the client's flags (only when run as a program)."""
    from absl import flags

    flags.DEFINE_string("server", "http://localhost:8501", "TF Serving REST base URL.")
    flags.DEFINE_string("model", "cup_reconstructor", "Served model name.")
    flags.DEFINE_string("input", None, "Sensed image(s): .npy ([H',W], [H',W,1] or [B,H',W,1]) or grayscale .png.")
    flags.DEFINE_string("output", None, "Reconstruction: .npz (array 'scene' [B,T,H,W,1]) or .png (frame strip).")
    flags.DEFINE_integer("version", None, "Model version (default: the server's latest).")
    flags.DEFINE_string("signature_name", DEFAULT_SIGNATURE, "Signature to call.")
    flags.DEFINE_string("input_name", DEFAULT_INPUT_NAME, "The signature's input name.")
    flags.DEFINE_enum("request_format", "inputs", ["inputs", "instances"], "REST request format (columnar or row).")
    flags.DEFINE_float("png_full_scale", None, "Sensed value of a white PNG pixel (default: T from the model).")
    flags.DEFINE_float("timeout", 60.0, "Seconds per HTTP request.")


def config_from_flags(values) -> ClientConfig:
    """`ClientConfig` from parsed flag values (`values` = `absl.flags.FLAGS`)."""
    if not values.input:
        raise ConfigError("--input is required")
    if not values.output:
        raise ConfigError("--output is required")
    return ClientConfig(
        server=values.server, model=values.model, input=values.input, output=values.output,
        version=values.version, signature_name=values.signature_name, input_name=values.input_name,
        request_format=values.request_format, png_full_scale=values.png_full_scale, timeout=values.timeout,
    )


def main(argv) -> int:
    import sys

    from absl import flags

    from tfvidgan.errors import TfvidganError

    try:
        if len(argv) > 1:
            raise ConfigError(f"unexpected positional arguments {argv[1:]} (flags are --name=value)")
        config = config_from_flags(flags.FLAGS)
        scenes = run(config)
    except (TfvidganError, ServeError) as e:
        print(f"serve_client: error: {e}", file=sys.stderr)
        return 2
    print(json.dumps({"output": config.output, "scene_shape": list(scenes.shape)}))
    return 0


if __name__ == "__main__":
    from absl import app

    define_flags()
    app.run(main)
