"""Command-line client for a CUP reconstructor served by TensorFlow Serving, over REST or gRPC.

    python -m tfvidgan.serve_client --server=http://localhost:8501 --model=cup_reconstructor \\
        --input=sensed.npy --output=recon.npz
    python -m tfvidgan.serve_client --protocol=grpc --server=localhost:8500 --model=cup_reconstructor \\
        --input=sensed.npy --mask=camera1_mask.npy --output=recon.npz

1. reads the model's metadata (REST ``GET {server}/v1/models/{model}[/versions/{v}]/metadata``, or gRPC
   ``PredictionService.GetModelMetadata``) and from it the signature's input shape (e.g.
   ``[-1, H + T − 1, W, 1]`` for ``sensed_image``) and output shape ``[-1, T, H, W, 1]``;
2. loads ``--input`` (and ``--mask``) and checks them against those shapes BEFORE sending (a mismatch
   raises a `DatasetError` naming the file and both shapes);
3. predicts: REST ``POST {server}/v1/models/{model}[/versions/{v}]:predict`` with ``{"signature_name",
   "inputs": {...}}`` (or the row format ``{"instances": [...]}`` with ``--request_format=instances``), or
   gRPC ``PredictionService.Predict`` (protos from ``tensorflow-serving-api``);
4. checks the answer (shape ``[B, T, H, W, 1]`` for the B inputs, all values finite) and only then
   writes it.

Limits: ``--timeout`` is ONE deadline for the whole run (metadata and predict together; a server that
trickles bytes cannot stretch it), ``--max_response_bytes`` caps every answer (REST: body bytes; gRPC:
the received message). Every failure is a `ServeError` / `TfvidganError` with a one-line message.

``--mask`` (an ``[H, W]`` ``.npy``, another camera's coding mask) calls the unfolded reconstructor's
``with_mask`` signature (unless ``--signature_name`` says otherwise) with the mask repeated for every
input; without it ``serving_default`` uses the model's training mask.

Input files:
  * ``.npy``: float array ``[H', W]``, ``[H', W, 1]`` or ``[B, H', W, 1]`` in sensed units (as in the
    CUP pairs dataset: a bright pixel in one frame behind an open mask pixel adds 1.0);
  * ``.png``: one grayscale (8- or 16-bit; colour is converted to luminance) sensed image; pixel
    codes are mapped linearly so that white = ``--png_full_scale`` (default: ``T``, the number of
    frames, read from the served model's output shape).
Output files:
  * ``.npz``: array ``scene`` ``[B, T, H, W, 1]`` float32 in ``[0, 1]``;
  * ``.png``: a strip, one row of ``T`` frames per sample (``[B·H, T·W]`` 8-bit grayscale).

REST uses only the standard library (`http.client`).
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import os
import socket
import threading
import time
import urllib.parse

import numpy as np

from tfvidgan.errors import ConfigError, DatasetError, ServeError

__all__ = [
    "ServeError",
    "ClientConfig",
    "get_model_metadata",
    "signature_shapes",
    "grpc_signature_shapes",
    "load_sensed",
    "load_mask",
    "check_input_shape",
    "check_scenes",
    "predict",
    "grpc_predict",
    "save_reconstruction",
    "run",
    "main",
]

DEFAULT_INPUT_NAME = "sensed_image"
MASK_INPUT_NAME = "mask"
DEFAULT_SIGNATURE = "serving_default"
WITH_MASK_SIGNATURE = "with_mask"
PROTOCOLS = ("rest", "grpc")
DEFAULT_SERVERS = {"rest": "http://localhost:8501", "grpc": "localhost:8500"}
_MAX_DETAIL = 300


@dataclasses.dataclass(frozen=True)
class ClientConfig:
    """One request (field names are the flag names; the flag defaults are these defaults).

    Attributes:
      server: REST: base URL, e.g. ``http://localhost:8501``; gRPC: ``host:port``, e.g. ``localhost:8500``.
      model: served model name.
      input: ``.npy`` or ``.png`` sensed image(s). output: ``.npz`` or ``.png`` (strip).
      protocol: ``"rest"`` or ``"grpc"``.
      mask: optional ``.npy`` ``[H, W]`` coding mask of the camera that took ``input`` ("" = the model's).
      version: model version (``None`` = the server's latest).
      signature_name: signature to call (default: ``serving_default``, or ``with_mask`` with ``mask``).
      input_name: the signature's sensed-image input name.
      request_format: REST only: ``"inputs"`` (columnar) or ``"instances"`` (row).
      png_full_scale: sensed value of a white PNG pixel (``None`` = ``T`` from the model metadata).
      timeout: seconds for the whole run (all requests together), > 0.
      max_response_bytes: largest answer accepted, bytes (> 0).
    """

    server: str
    model: str
    input: str
    output: str
    protocol: str = "rest"
    mask: str = ""
    version: int | None = None
    signature_name: str = ""
    input_name: str = DEFAULT_INPUT_NAME
    request_format: str = "inputs"
    png_full_scale: float | None = None
    timeout: float = 60.0
    max_response_bytes: int = 256 * 1024 * 1024

    @property
    def signature(self) -> str:
        """The signature to call."""
        return self.signature_name or (WITH_MASK_SIGNATURE if self.mask else DEFAULT_SIGNATURE)

    def validate(self) -> None:
        """Raises `ConfigError` naming the bad flag."""
        if self.protocol not in PROTOCOLS:
            raise ConfigError(f"--protocol={self.protocol!r} must be one of {', '.join(PROTOCOLS)}")
        if self.protocol == "rest" and not self.server.startswith(("http://", "https://")):
            raise ConfigError(f"--server={self.server!r} must be an http:// or https:// URL for --protocol=rest")
        if self.protocol == "grpc" and ("://" in self.server or ":" not in self.server):
            raise ConfigError(f"--server={self.server!r} must be host:port (e.g. localhost:8500) for --protocol=grpc")
        if not self.model:
            raise ConfigError("--model is required")
        if os.path.splitext(self.input)[1].lower() not in (".npy", ".png"):
            raise ConfigError(f"--input={self.input!r} must be a .npy or .png file")
        if os.path.splitext(self.output)[1].lower() not in (".npz", ".png"):
            raise ConfigError(f"--output={self.output!r} must be a .npz or .png file")
        if self.mask and os.path.splitext(self.mask)[1].lower() != ".npy":
            raise ConfigError(f"--mask={self.mask!r} must be a .npy file")
        if self.request_format not in ("inputs", "instances"):
            raise ConfigError(f"--request_format={self.request_format!r} must be 'inputs' or 'instances'")
        if self.png_full_scale is not None and not self.png_full_scale > 0:
            raise ConfigError(f"--png_full_scale must be > 0, got {self.png_full_scale}")
        if not self.timeout > 0:
            raise ConfigError(f"--timeout must be > 0, got {self.timeout}")
        if not self.max_response_bytes > 0:
            raise ConfigError(f"--max_response_bytes must be > 0, got {self.max_response_bytes}")


class Deadline:
    """One overall deadline: ``Deadline(seconds)``; `remaining` raises `ServeError` once it has passed."""

    def __init__(self, seconds: float):
        self.seconds = float(seconds)
        self.end = time.monotonic() + self.seconds

    def remaining(self, what: str) -> float:
        left = self.end - time.monotonic()
        if left <= 0:
            raise self.error(what)
        return left

    def passed(self) -> bool:
        return time.monotonic() >= self.end

    def error(self, what: str) -> "ServeError":
        return ServeError(f"{what}: no complete answer within --timeout={self.seconds:g} s")


# -- REST ---------------------------------------------------------------------------------------


def _model_url(server: str, model: str, version: int | None) -> str:
    url = f"{server.rstrip('/')}/v1/models/{model}"
    return url if version is None else f"{url}/versions/{int(version)}"


def _abort(connection: http.client.HTTPConnection) -> None:
    """Deadline watchdog: shut the socket down so a blocked read returns at once."""
    sock = connection.sock
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _http(url: str, body: dict | None, deadline: Deadline, max_bytes: int) -> tuple[int, bytes]:
    """One HTTP request bounded by ``deadline`` (connect, headers and body together) and ``max_bytes``."""
    parts = urllib.parse.urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    data = None if body is None else json.dumps(body).encode("utf-8")
    cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = cls(parts.hostname, parts.port, timeout=deadline.remaining(url))
    watchdog = threading.Timer(deadline.remaining(url), _abort, [connection])
    watchdog.daemon = True
    try:
        connection.connect()
        watchdog.start()
        headers = {"Content-Type": "application/json"} if data is not None else {}
        connection.request("GET" if data is None else "POST", path, body=data, headers=headers)
        response = connection.getresponse()
        length = response.getheader("Content-Length")
        if length is not None and length.strip().isdigit() and int(length) > max_bytes:
            raise ServeError(f"{url}: answer of {int(length)} bytes exceeds --max_response_bytes={max_bytes}")
        chunks, total = [], 0
        while True:
            chunk = response.read1(65536)
            if not chunk:
                break
            total += len(chunk)
            if total > max_bytes:
                raise ServeError(f"{url}: answer exceeds --max_response_bytes={max_bytes}")
            chunks.append(chunk)
            if deadline.passed():
                raise deadline.error(url)
        if deadline.passed():
            raise deadline.error(url)
        if length is not None and length.strip().isdigit() and total < int(length):
            raise ServeError(f"{url}: answer ended after {total} of {int(length)} bytes")
        return response.status, b"".join(chunks)
    except ServeError:
        raise
    except (http.client.HTTPException, OSError) as e:
        if deadline.passed():
            raise deadline.error(url) from e
        raise ServeError(f"{url}: cannot reach the server ({type(e).__name__}: {e})") from e
    finally:
        watchdog.cancel()
        connection.close()


def _request_json(url: str, body: dict | None, deadline: Deadline, max_bytes: int) -> dict:
    status, payload = _http(url, body, deadline, max_bytes)
    try:
        answer = json.loads(payload)
    except RecursionError as e:
        raise ServeError(f"{url}: answer is JSON nested too deeply to read") from e
    except ValueError as e:
        if status >= 400:
            raise ServeError(f"{url}: HTTP {status}: {payload[:_MAX_DETAIL].decode('utf-8', 'replace')}") from e
        raise ServeError(f"{url}: answer is not JSON: {payload[:200]!r}") from e
    if status >= 400:
        detail = answer.get("error", answer) if isinstance(answer, dict) else answer
        raise ServeError(f"{url}: HTTP {status}: {str(detail)[:_MAX_DETAIL]}")
    if not isinstance(answer, dict):
        raise ServeError(f"{url}: answer is not a JSON object")
    return answer


def get_model_metadata(server: str, model: str, *, version: int | None = None, timeout: float = 60.0,
                       deadline: Deadline | None = None, max_response_bytes: int = 256 * 1024 * 1024) -> dict:
    """The JSON of ``GET /v1/models/{model}[/versions/{v}]/metadata`` (raises `ServeError`)."""
    deadline = deadline or Deadline(timeout)
    return _request_json(_model_url(server, model, version) + "/metadata", None, deadline, max_response_bytes)


def _field(container, key: str, kind: type, where: str):
    """``container[key]`` checked to be a ``kind`` (else a one-line `ServeError` naming ``where``)."""
    if not isinstance(container, dict) or key not in container:
        raise ServeError(f"model metadata has no field {where}")
    value = container[key]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise ServeError(f"model metadata field {where} is a {type(value).__name__}, expected a {kind.__name__}")
    return value


def _dims(tensor_info, where: str) -> list[int | None]:
    if not isinstance(tensor_info, dict):
        raise ServeError(f"model metadata field {where} is a {type(tensor_info).__name__}, expected an object")
    shape = _field(tensor_info, "tensor_shape", dict, f"{where}.tensor_shape")
    if shape.get("unknown_rank"):
        raise ServeError(f"tensor {where} has unknown rank in the model metadata")
    dims = shape.get("dim", [])
    if not isinstance(dims, list) or len(dims) > 16:
        raise ServeError(f"model metadata field {where}.tensor_shape.dim is not a list of at most 16 dimensions")
    out = []
    for i, dim in enumerate(dims):
        size = dim.get("size", -1) if isinstance(dim, dict) else None
        try:
            value = int(size)  # sizes are JSON strings in TF Serving
        except (TypeError, ValueError, OverflowError):
            raise ServeError(f"model metadata field {where}.tensor_shape.dim[{i}].size is not an integer: "
                             f"{str(size)[:50]}") from None
        if isinstance(size, bool) or isinstance(size, float) or value < -1 or value > 2**31:
            raise ServeError(f"model metadata field {where}.tensor_shape.dim[{i}].size is out of range: {size!r}")
        out.append(None if value < 0 else value)
    return out


def signature_shapes(metadata: dict, signature_name: str = DEFAULT_SIGNATURE) -> tuple[dict, dict]:
    """``({input name: shape}, {output name: shape})`` of a signature in REST metadata, unknown dims ``None``.

    Every field is type-checked: odd metadata raises a one-line `ServeError` naming the field.

    Raises:
      ServeError: malformed metadata, or no such signature (the message lists the available ones).
    """
    inner = _field(metadata, "metadata", dict, "metadata")
    outer = _field(inner, "signature_def", dict, "metadata.signature_def")
    signatures = _field(outer, "signature_def", dict, "metadata.signature_def.signature_def")
    if signature_name not in signatures:
        raise ServeError(f"model has no signature {signature_name!r}; available: {sorted(map(str, signatures))[:20]}")
    where = f"signature_def[{signature_name!r}]"
    sig = signatures[signature_name]
    if not isinstance(sig, dict):
        raise ServeError(f"model metadata field {where} is a {type(sig).__name__}, expected an object")
    shapes = []
    for part in ("inputs", "outputs"):
        tensors = _field(sig, part, dict, f"{where}.{part}")
        shapes.append({str(name): _dims(info, f"{where}.{part}[{name!r}]") for name, info in tensors.items()})
    return shapes[0], shapes[1]


def _parse_predictions(answer: dict, request_format: str, output_names: list[str], url: str) -> dict[str, np.ndarray]:
    def array(value, name):
        try:
            return np.asarray(value, np.float32)
        except (ValueError, TypeError, OverflowError, RecursionError):
            raise ServeError(f"{url}: output {name!r} is not a rectangular array of numbers") from None

    if request_format == "inputs":
        if "outputs" not in answer:
            raise ServeError(f"{url}: answer has no 'outputs' field: {sorted(answer)[:10]}")
        outputs = answer["outputs"]
        if isinstance(outputs, dict):
            return {str(name): array(value, name) for name, value in outputs.items()}
        if len(output_names) != 1:
            raise ServeError(f"{url}: one unnamed output but the signature has {output_names}")
        return {output_names[0]: array(outputs, output_names[0])}
    if "predictions" not in answer:
        raise ServeError(f"{url}: answer has no 'predictions' field: {sorted(answer)[:10]}")
    rows = answer["predictions"]
    if not isinstance(rows, list):
        raise ServeError(f"{url}: 'predictions' is not a list")
    if rows and isinstance(rows[0], dict):
        if not all(isinstance(row, dict) and row.keys() == rows[0].keys() for row in rows):
            raise ServeError(f"{url}: 'predictions' rows do not all name the same outputs")
        return {str(name): array([row[name] for row in rows], name) for name in rows[0]}
    if len(output_names) != 1:
        raise ServeError(f"{url}: one unnamed output but the signature has {output_names}")
    return {output_names[0]: array(rows, output_names[0])}


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
    extra_inputs: dict | None = None,
    deadline: Deadline | None = None,
    max_response_bytes: int = 256 * 1024 * 1024,
) -> dict[str, np.ndarray]:
    """REST ``:predict`` with ``sensed`` ``[B, H + T − 1, W, 1]`` float32 (plus ``extra_inputs``, e.g. the
    mask ``[B, H, W]``).

    Args:
      output_names: the signature's output names (from `signature_shapes`), used when the server
        returns a single unnamed output.

    Returns:
      ``{output name: float32 array}``, e.g. ``{"scene": [B, T, H, W, 1]}`` (not yet validated: see
      `check_scenes`).

    Raises:
      ServeError: HTTP or protocol failure, deadline, size cap (one line naming the URL).
    """
    deadline = deadline or Deadline(timeout)
    url = _model_url(server, model, version) + ":predict"
    inputs = {input_name: np.asarray(sensed, np.float32), **(extra_inputs or {})}
    if request_format == "inputs":
        body = {"signature_name": signature_name, "inputs": {k: np.asarray(v).tolist() for k, v in inputs.items()}}
    else:
        body = {"signature_name": signature_name,
                "instances": [{k: np.asarray(v)[i].tolist() for k, v in inputs.items()} for i in range(len(sensed))]}
    return _parse_predictions(_request_json(url, body, deadline, max_response_bytes), request_format, output_names,
                              url)


# -- gRPC ---------------------------------------------------------------------------------------


def _grpc_stub(server: str, max_response_bytes: int):
    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    channel = grpc.insecure_channel(server, options=[("grpc.max_receive_message_length", int(max_response_bytes)),
                                                     ("grpc.max_send_message_length", -1)])
    return channel, prediction_service_pb2_grpc.PredictionServiceStub(channel)


def _grpc_call(method, request, server: str, deadline: Deadline, max_response_bytes: int, what: str):
    import grpc

    try:
        return method(request, timeout=deadline.remaining(f"{server} {what}"))
    except grpc.RpcError as e:
        code = e.code() if callable(getattr(e, "code", None)) else None
        details = e.details() if callable(getattr(e, "details", None)) else str(e)
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            raise deadline.error(f"{server} {what}") from None
        if code == grpc.StatusCode.RESOURCE_EXHAUSTED and "larger than max" in str(details):
            raise ServeError(f"{server} {what}: answer exceeds --max_response_bytes={max_response_bytes}") from None
        if code == grpc.StatusCode.UNAVAILABLE:
            raise ServeError(f"{server} {what}: cannot reach the server ({str(details)[:_MAX_DETAIL]})") from None
        name = code.name if code is not None else "error"
        raise ServeError(f"{server} {what}: gRPC {name}: {str(details)[:_MAX_DETAIL]}") from None


def _model_spec(model: str, version: int | None, signature_name: str = ""):
    from tensorflow_serving.apis import model_pb2

    spec = model_pb2.ModelSpec(name=model, signature_name=signature_name)
    if version is not None:
        spec.version.value = int(version)
    return spec


def grpc_signature_shapes(server: str, model: str, signature_name: str, *, version: int | None = None,
                          deadline: Deadline, max_response_bytes: int = 256 * 1024 * 1024) -> tuple[dict, dict]:
    """``({input name: shape}, {output name: shape})`` from gRPC ``GetModelMetadata`` (field
    ``signature_def``), unknown dims ``None``. Raises a one-line `ServeError`."""
    from tensorflow_serving.apis import get_model_metadata_pb2

    channel, stub = _grpc_stub(server, max_response_bytes)
    with channel:
        request = get_model_metadata_pb2.GetModelMetadataRequest(model_spec=_model_spec(model, version),
                                                                 metadata_field=["signature_def"])
        answer = _grpc_call(stub.GetModelMetadata, request, server, deadline, max_response_bytes, "GetModelMetadata")
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    if "signature_def" not in answer.metadata or not answer.metadata["signature_def"].Unpack(signature_map):
        raise ServeError(f"{server}: GetModelMetadata answer holds no SignatureDefMap under 'signature_def'")
    signatures = signature_map.signature_def
    if signature_name not in signatures:
        raise ServeError(f"model has no signature {signature_name!r}; available: {sorted(signatures)[:20]}")

    def dims(info, where):
        if info.tensor_shape.unknown_rank:
            raise ServeError(f"tensor {where} has unknown rank in the model metadata")
        return [None if d.size < 0 else int(d.size) for d in info.tensor_shape.dim]

    sig = signatures[signature_name]
    return ({k: dims(v, k) for k, v in sig.inputs.items()}, {k: dims(v, k) for k, v in sig.outputs.items()})


def grpc_predict(server: str, model: str, inputs: dict[str, np.ndarray], *, signature_name: str,
                 version: int | None = None, deadline: Deadline,
                 max_response_bytes: int = 256 * 1024 * 1024) -> dict[str, np.ndarray]:
    """gRPC ``PredictionService.Predict``: ``{input name: float32 array}`` -> ``{output name: float32 array}``
    (not yet validated: see `check_scenes`). Raises a one-line `ServeError`."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest(model_spec=_model_spec(model, version, signature_name))
    for name, value in inputs.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(np.asarray(value, np.float32)))
    channel, stub = _grpc_stub(server, max_response_bytes)
    with channel:
        answer = _grpc_call(stub.Predict, request, server, deadline, max_response_bytes, "Predict")
    out = {}
    for name, proto in answer.outputs.items():
        try:
            out[name] = np.asarray(tf.make_ndarray(proto), np.float32)
        except (TypeError, ValueError) as e:
            raise ServeError(f"{server} Predict: output {name!r} is not a float tensor ({e})") from None
    return out


def check_scenes(scenes: np.ndarray, batch: int, expected: list[int | None], name: str = "scene") -> np.ndarray:
    """The model's answer, checked: shape ``[batch, T, H, W, 1]`` (``expected`` from the metadata, ``None`` =
    any) and all values finite. Raises a one-line `ServeError` (nothing is written then)."""
    scenes = np.asarray(scenes)
    want = [batch, *expected[1:]] if len(expected) == 5 else [batch, None, None, None, 1]
    ok = scenes.ndim == 5 and all(w is None or w == s for w, s in zip(want, scenes.shape))
    if not ok:
        shown = ["?" if w is None else w for w in want]
        raise ServeError(f"server answered {name!r} of shape {list(scenes.shape)} for {batch} input(s), expected "
                         f"{shown}; nothing written")
    if not np.all(np.isfinite(scenes)):
        bad = int(np.size(scenes) - np.count_nonzero(np.isfinite(scenes)))
        raise ServeError(f"server answered {bad} NaN or infinite values in {name!r}; nothing written")
    return scenes.astype(np.float32)


# -- files --------------------------------------------------------------------------------------


def load_mask(path: str, expected: list[int | None]) -> np.ndarray:
    """Reads a coding mask ``.npy`` ``[H, W]`` (or ``[1, H, W]``) -> ``[H, W]`` float32, checked finite and
    against ``expected`` (the signature's mask input shape ``[B, H, W]``). Raises `DatasetError` naming
    the file."""
    if not os.path.isfile(path):
        raise DatasetError(f"--mask={path}: file not found")
    array = _load_numeric_npy(path, f"--mask={path}")
    if array.ndim == 3 and array.shape[0] == 1:
        array = array[0]
    want = list(expected[1:])
    if array.ndim != 2 or any(w is not None and w != a for w, a in zip(want, array.shape)) or len(want) != 2:
        raise DatasetError(f"--mask={path}: mask of shape {list(array.shape)} does not fit the model's mask "
                           f"input {['?' if w is None else w for w in want]} (H, W)")
    if not np.all(np.isfinite(array)):
        raise DatasetError(f"--mask={path}: contains NaN or infinite values")
    return array


def _load_numeric_npy(path: str, label: str) -> np.ndarray:
    """A numeric ``.npy`` (no pickles) as float32; `DatasetError` starting with ``label`` otherwise."""
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise DatasetError(f"{label}: cannot read as .npy: {e}") from e
    if not np.issubdtype(array.dtype, np.number):
        raise DatasetError(f"{label}: expected a numeric array, got dtype {array.dtype}")
    return array.astype(np.float32)


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
        array = _load_numeric_npy(path, path)
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
    """Metadata -> load and check inputs -> predict -> check the answer -> write it. Returns the scenes
    ``[B, T, H, W, 1]``. All requests share one deadline (``config.timeout``)."""
    config.validate()
    deadline = Deadline(config.timeout)
    signature = config.signature
    if config.protocol == "grpc":
        inputs, outputs = grpc_signature_shapes(config.server, config.model, signature, version=config.version,
                                                deadline=deadline, max_response_bytes=config.max_response_bytes)
    else:
        metadata = get_model_metadata(config.server, config.model, version=config.version, deadline=deadline,
                                      max_response_bytes=config.max_response_bytes)
        inputs, outputs = signature_shapes(metadata, signature)
    if config.input_name not in inputs:
        raise ConfigError(
            f"--input_name={config.input_name!r} is not an input of {config.model!r}/{signature}; "
            f"inputs: {sorted(inputs)}"
        )
    full_scale = config.png_full_scale
    if full_scale is None:
        scene_shapes = [s for s in outputs.values() if len(s) == 5 and s[1] is not None]
        if len(scene_shapes) == 1:
            full_scale = float(scene_shapes[0][1])
    sensed = load_sensed(config.input, png_full_scale=full_scale)
    check_input_shape(sensed, inputs[config.input_name], config.input, model=config.model, input_name=config.input_name)
    extra = {}
    if config.mask:
        if MASK_INPUT_NAME not in inputs:
            raise ConfigError(f"--mask given but {config.model!r}/{signature} takes no {MASK_INPUT_NAME!r} input "
                              f"(inputs: {sorted(inputs)}); only the unfolded reconstructor's with_mask does")
        mask = load_mask(config.mask, inputs[MASK_INPUT_NAME])
        extra[MASK_INPUT_NAME] = np.broadcast_to(mask, (len(sensed), *mask.shape)).copy()
    elif set(inputs) != {config.input_name}:
        raise ConfigError(f"{config.model!r}/{signature} takes inputs {sorted(inputs)}; give --mask (or call "
                          f"--signature_name={DEFAULT_SIGNATURE})")
    if config.protocol == "grpc":
        results = grpc_predict(config.server, config.model, {config.input_name: sensed, **extra},
                               signature_name=signature, version=config.version, deadline=deadline,
                               max_response_bytes=config.max_response_bytes)
    else:
        results = predict(config.server, config.model, sensed, output_names=sorted(outputs),
                          input_name=config.input_name, signature_name=signature, version=config.version,
                          request_format=config.request_format, extra_inputs=extra, deadline=deadline,
                          max_response_bytes=config.max_response_bytes)
    if len(results) == 1:
        name, scenes = next(iter(results.items()))
    elif "scene" in results:
        name, scenes = "scene", results["scene"]
    else:
        raise ServeError(f"model {config.model!r} returned outputs {sorted(results)[:10]}; expected one named 'scene'")
    scenes = check_scenes(scenes, len(sensed), outputs.get(name, []), name)
    save_reconstruction(config.output, scenes)
    return scenes


def define_flags() -> None:
    """Defines the client's flags (only when run as a program); defaults come from `ClientConfig`."""
    from absl import flags

    d = {f.name: f.default for f in dataclasses.fields(ClientConfig)}
    flags.DEFINE_enum("protocol", d["protocol"], list(PROTOCOLS), "TF Serving API: REST (port 8501) or gRPC (8500).")
    flags.DEFINE_string("server", "", f"REST base URL or gRPC host:port (default {DEFAULT_SERVERS}).")
    flags.DEFINE_string("model", "cup_reconstructor", "Served model name.")
    flags.DEFINE_string("input", None, "Sensed image(s): .npy ([H',W], [H',W,1] or [B,H',W,1]) or grayscale .png.")
    flags.DEFINE_string("output", None, "Reconstruction: .npz (array 'scene' [B,T,H,W,1]) or .png (frame strip).")
    flags.DEFINE_string("mask", d["mask"], "Optional .npy [H,W] coding mask of the camera (unfolded reconstructor: "
                        "calls its with_mask signature); default: the model's training mask.")
    flags.DEFINE_integer("version", d["version"], "Model version (default: the server's latest).")
    flags.DEFINE_string("signature_name", d["signature_name"], "Signature to call (default: serving_default, "
                        "or with_mask when --mask is given).")
    flags.DEFINE_string("input_name", d["input_name"], "The signature's sensed-image input name.")
    flags.DEFINE_enum("request_format", d["request_format"], ["inputs", "instances"],
                      "REST request format (columnar or row).")
    flags.DEFINE_float("png_full_scale", d["png_full_scale"], "Sensed value of a white PNG pixel (default: T).")
    flags.DEFINE_float("timeout", d["timeout"], "Seconds for the whole run (metadata + predict), one deadline.")
    flags.DEFINE_integer("max_response_bytes", d["max_response_bytes"], "Largest answer accepted (bytes).")


def config_from_flags(values) -> ClientConfig:
    """`ClientConfig` from parsed flag values (`values` = `absl.flags.FLAGS`)."""
    if not values.input:
        raise ConfigError("--input is required")
    if not values.output:
        raise ConfigError("--output is required")
    return ClientConfig(
        server=values.server or DEFAULT_SERVERS[values.protocol], model=values.model, input=values.input,
        output=values.output, protocol=values.protocol, mask=values.mask, version=values.version,
        signature_name=values.signature_name, input_name=values.input_name, request_format=values.request_format,
        png_full_scale=values.png_full_scale, timeout=values.timeout, max_response_bytes=values.max_response_bytes,
    )


def main(argv) -> int:
    from absl import flags

    from tfvidgan import cli

    cli.check_positional(argv)
    config = config_from_flags(flags.FLAGS)
    scenes = run(config)
    print(json.dumps({"output": config.output, "scene_shape": list(scenes.shape)}))
    return 0


if __name__ == "__main__":
    from tfvidgan import cli

    define_flags()
    cli.run(main)
