"""serve_client against a local stand-in for TF Serving's REST API running a real SavedModel."""
import dataclasses
import http.server
import json
import re
import threading

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tfvidgan import serve_client
from tfvidgan.cup.operator import make_mask
from tfvidgan.errors import ConfigError, DatasetError
from tfvidgan.models.reconstructor import build_reconstructor

FRAMES, SIZE = 4, 8
SENSED_SHAPE = (SIZE + FRAMES - 1, SIZE, 1)


def tensor_info(name, spec):
    """TF Serving's JSON for a TensorInfo (sizes are strings, unknown = "-1")."""
    dims = [{"size": str(-1 if d is None else d), "name": ""} for d in spec.shape]
    return {"dtype": "DT_FLOAT", "tensor_shape": {"dim": dims, "unknown_rank": False}, "name": f"{name}:0"}


class FakeTfServing:
    """Answers /v1/models/NAME/metadata and /v1/models/NAME:predict like TF Serving, running the
    SavedModel's `serving_default` in-process; counts predict calls."""

    def __init__(self, export_dir, model_name, mutate=None):
        self.loaded = tf.saved_model.load(export_dir)
        self.model_name = model_name
        self.predict_calls = 0
        self.mutate = mutate  # optional: outputs dict -> outputs dict (a misbehaving model)
        self.metadata = {
            "model_spec": {"name": model_name, "signature_name": "", "version": "1"},
            "metadata": {"signature_def": {"signature_def": {name: {
                "inputs": {k: tensor_info(k, v) for k, v in sig.structured_input_signature[1].items()},
                "outputs": {k: tensor_info(k, tf.TensorSpec(v.shape, v.dtype))
                            for k, v in sig.structured_outputs.items()},
                "method_name": "tensorflow/serving/predict",
            } for name, sig in self.loaded.signatures.items()}}},
        }
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def reply(self, code, body):
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                if self.path == f"/v1/models/{server.model_name}/metadata":
                    return self.reply(200, server.metadata)
                return self.reply(404, {"error": f"Servable not found for request: {self.path}"})

            def do_POST(self):
                match = re.fullmatch(r"/v1/models/([^/:]+):predict", self.path)
                if not match or match.group(1) != server.model_name:
                    return self.reply(404, {"error": f"Servable not found for request: {self.path}"})
                server.predict_calls += 1
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if "inputs" in body:
                    values = {k: np.asarray(v, np.float32) for k, v in body["inputs"].items()}
                else:
                    values = {k: np.asarray([row[k] for row in body["instances"]], np.float32)
                              for k in body["instances"][0]}
                signature = server.loaded.signatures[body.get("signature_name") or "serving_default"]
                try:
                    result = signature(**{k: tf.constant(v) for k, v in values.items()})
                except (tf.errors.InvalidArgumentError, ValueError, TypeError) as e:
                    return self.reply(400, {"error": str(e)[:200]})
                outputs = {k: v.numpy() for k, v in result.items()}
                if server.mutate is not None:
                    outputs = server.mutate(outputs)
                outputs = {k: np.asarray(v).tolist() for k, v in outputs.items()}
                if "inputs" in body:
                    (only,) = outputs.values()
                    return self.reply(200, {"outputs": only})
                rows = next(iter(outputs.values()))
                return self.reply(200, {"predictions": rows})

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    model = build_reconstructor(FRAMES, SIZE, SIZE, make_mask(SIZE, SIZE, seed=0), base_filters=4, depth=1)
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        name="serving_default",
        fn=lambda sensed_image: {"scene": model(sensed_image, training=False)},
        input_signature=[tf.TensorSpec([None, *SENSED_SHAPE], tf.float32, name="sensed_image")],
    )
    export_dir = str(tmp_path_factory.mktemp("export") / "1")
    archive.write_out(export_dir, verbose=False)
    with FakeTfServing(export_dir, "cup_reconstructor") as server:
        yield server, model


def make_config(server, tmp_path, input_path, output="recon.npz", **kw):
    return serve_client.ClientConfig(server=server.url, model="cup_reconstructor", input=str(input_path),
                                     output=str(tmp_path / output), **kw)


@pytest.mark.parametrize("request_format", ["inputs", "instances"])
def test_npy_round_trip_equals_the_model(served, tmp_path, request_format):
    server, model = served
    sensed = np.random.default_rng(0).uniform(0, 2, (3, *SENSED_SHAPE)).astype(np.float32)
    np.save(tmp_path / "sensed.npy", sensed)
    scenes = serve_client.run(make_config(server, tmp_path, tmp_path / "sensed.npy", request_format=request_format))
    expected = model(sensed).numpy()
    assert scenes.shape == (3, FRAMES, SIZE, SIZE, 1)
    np.testing.assert_allclose(scenes, expected, atol=1e-5)
    np.testing.assert_allclose(np.load(tmp_path / "recon.npz")["scene"], expected, atol=1e-5)


def test_png_input_is_scaled_by_frames_and_png_strip_output(served, tmp_path):
    server, model = served
    codes = np.random.default_rng(1).integers(0, 256, SENSED_SHAPE[:2]).astype(np.uint8)
    Image.fromarray(codes, mode="L").save(tmp_path / "sensed.png")
    serve_client.run(make_config(server, tmp_path, tmp_path / "sensed.png", output="strip.png"))
    # White = T (the number of frames, read from the served output shape).
    expected = model(codes[None, ..., None].astype(np.float32) / 255.0 * FRAMES).numpy()
    strip = np.asarray(Image.open(tmp_path / "strip.png"))
    assert strip.shape == (SIZE, FRAMES * SIZE)
    for t in range(FRAMES):
        frame = strip[:, t * SIZE : (t + 1) * SIZE].astype(np.float32)
        assert np.abs(frame - np.round(expected[0, t, ..., 0] * 255)).max() <= 1


def test_wrong_shape_fails_before_sending_and_names_the_file(served, tmp_path):
    server, _ = served
    np.save(tmp_path / "wide.npy", np.zeros((SIZE + FRAMES - 1, SIZE + 1), np.float32))
    before = server.predict_calls
    with pytest.raises(DatasetError, match=r"wide\.npy.*\[1, 11, 9, 1\].*\['\?', 11, 8, 1\]"):
        serve_client.run(make_config(server, tmp_path, tmp_path / "wide.npy"))
    assert server.predict_calls == before
    assert not (tmp_path / "recon.npz").exists()
    with pytest.raises(DatasetError, match=r"missing\.npy: input file not found"):
        serve_client.run(make_config(server, tmp_path, tmp_path / "missing.npy"))
    np.save(tmp_path / "nan.npy", np.full(SENSED_SHAPE, np.nan, np.float32))
    with pytest.raises(DatasetError, match=r"nan\.npy.*NaN"):
        serve_client.run(make_config(server, tmp_path, tmp_path / "nan.npy"))


def test_server_side_problems_are_clear(served, tmp_path):
    server, _ = served
    np.save(tmp_path / "sensed.npy", np.zeros(SENSED_SHAPE, np.float32))
    config = make_config(server, tmp_path, tmp_path / "sensed.npy")
    with pytest.raises(serve_client.ServeError, match="HTTP 404.*Servable not found"):
        serve_client.run(serve_client.ClientConfig(**{**config.__dict__, "model": "nope"}))
    with pytest.raises(serve_client.ServeError, match="no signature 'other'.*serving_default"):
        serve_client.run(serve_client.ClientConfig(**{**config.__dict__, "signature_name": "other"}))
    with pytest.raises(ConfigError, match="--input_name"):
        serve_client.run(serve_client.ClientConfig(**{**config.__dict__, "input_name": "image"}))
    # A port nobody listens on (bound, then closed).
    probe = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    dead = f"http://127.0.0.1:{probe.server_address[1]}"
    probe.server_close()
    with pytest.raises(serve_client.ServeError, match="cannot reach the server"):
        serve_client.run(serve_client.ClientConfig(**{**config.__dict__, "server": dead, "timeout": 5.0}))
    with pytest.raises(ConfigError, match="--output"):
        serve_client.run(serve_client.ClientConfig(**{**config.__dict__, "output": "x.txt"}))


def test_command_line(served, tmp_path):
    import subprocess
    import sys

    server, model = served
    sensed = np.random.default_rng(2).uniform(0, 1, SENSED_SHAPE).astype(np.float32)
    np.save(tmp_path / "one.npy", sensed)
    args = [sys.executable, "-m", "tfvidgan.serve_client", f"--server={server.url}", "--model=cup_reconstructor",
            f"--input={tmp_path / 'one.npy'}"]
    done = subprocess.run(args + [f"--output={tmp_path / 'out.npz'}"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    np.testing.assert_allclose(np.load(tmp_path / "out.npz")["scene"], model(sensed[None]).numpy(), atol=1e-5)
    done = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "tfvidgan.errors.ConfigError: --output is required" in done.stderr
    np.save(tmp_path / "bad.npy", np.zeros((3, 3), np.float32))
    done = subprocess.run(args[:-1] + [f"--input={tmp_path / 'bad.npy'}", f"--output={tmp_path / 'o.npz'}"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "bad.npy" in done.stderr and "do not fit input 'sensed_image'" in done.stderr
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now
    done = subprocess.run([args[0], "-m", "tfvidgan.serve_client", f"--server=http://127.0.0.1:{port}",
                           "--model=cup_reconstructor", f"--input={tmp_path / 'one.npy'}",
                           f"--output={tmp_path / 'never.npz'}", "--timeout=5"],
                          capture_output=True, text=True, timeout=120)
    errors = [line for line in done.stderr.splitlines() if "ServeError" in line]
    assert done.returncode == 1 and len(errors) == 1 and errors[0].startswith("tfvidgan.errors.ServeError: ")
    assert str(port) in errors[0] and not (tmp_path / "never.npz").exists()


# -- gRPC, the unfolded export (two signatures, warm-up file), and the client's limits ------------------

import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from concurrent import futures  # noqa: E402

import grpc  # noqa: E402
from tensorflow.core.protobuf import saved_model_pb2  # noqa: E402
from tensorflow_serving.apis import get_model_metadata_pb2, predict_pb2, prediction_log_pb2, prediction_service_pb2_grpc  # noqa: E402

from tfvidgan.export import export_version  # noqa: E402
from tfvidgan.training.reconstruction_task import ReconstructionConfig, ReconstructionTask  # noqa: E402


class GrpcServing(prediction_service_pb2_grpc.PredictionServiceServicer):
    """An in-test TF Serving gRPC endpoint: PredictionService.Predict and GetModelMetadata answered by
    running the real SavedModel (`delay`: seconds to stall each call; `mutate`: misbehave on outputs)."""

    def __init__(self, export_dir, model_name, mutate=None, delay=0.0):
        self.loaded = tf.saved_model.load(export_dir)
        with open(f"{export_dir}/saved_model.pb", "rb") as f:
            meta_graph = saved_model_pb2.SavedModel.FromString(f.read()).meta_graphs[0]
        self.signature_defs = {k: v for k, v in meta_graph.signature_def.items() if not k.startswith("__")}
        self.model_name, self.mutate, self.delay = model_name, mutate, delay
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(self, self.server)
        self.target = f"127.0.0.1:{self.server.add_insecure_port('127.0.0.1:0')}"

    def __enter__(self):
        self.server.start()
        return self

    def __exit__(self, *exc):
        self.server.stop(grace=None)

    def _check_model(self, request, context):
        if request.model_spec.name != self.model_name:
            context.abort(grpc.StatusCode.NOT_FOUND, f"Servable not found for request: {request.model_spec.name}")
        time.sleep(self.delay)

    def GetModelMetadata(self, request, context):
        self._check_model(request, context)
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        for name, signature_def in self.signature_defs.items():
            signature_map.signature_def[name].CopyFrom(signature_def)
        answer = get_model_metadata_pb2.GetModelMetadataResponse(model_spec=request.model_spec)
        answer.metadata["signature_def"].Pack(signature_map)
        return answer

    def Predict(self, request, context):
        self._check_model(request, context)
        signature = self.loaded.signatures[request.model_spec.signature_name or "serving_default"]
        inputs = {k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()}
        try:
            outputs = {k: v.numpy() for k, v in signature(**inputs).items()}
        except (tf.errors.InvalidArgumentError, TypeError, ValueError) as e:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e)[:300])
        if self.mutate is not None:
            outputs = self.mutate(outputs)
        answer = predict_pb2.PredictResponse(model_spec=request.model_spec)
        for k, v in outputs.items():
            answer.outputs[k].CopyFrom(tf.make_tensor_proto(np.asarray(v, np.float32)))
        return answer


@pytest.fixture(scope="module")
def unfolded(tmp_path_factory):
    """An unfolded reconstructor exported by the project's exporter (serving_default + with_mask + warm-up)."""
    keras.utils.set_random_seed(11)
    task = ReconstructionTask(ReconstructionConfig(num_frames=FRAMES, height=SIZE, width=SIZE,
                                                   mask=make_mask(SIZE, SIZE, seed=0), architecture="unfolded",
                                                   unfolded_stages=2, unfolded_filters=4))
    task.build()
    for w in task.reconstructor.trainable_weights:
        w.assign(tf.random.stateless_normal(w.shape, seed=[1, len(w.path)], stddev=0.1))
    path = export_version(str(tmp_path_factory.mktemp("unfolded") / "export"), task.export)
    return task, path


def _inputs(tmp_path, batch=2, seed=3):
    sensed = np.random.default_rng(seed).uniform(0, 2, (batch, *SENSED_SHAPE)).astype(np.float32)
    np.save(tmp_path / "sensed.npy", sensed)
    mask1 = make_mask(SIZE, SIZE, seed=1)
    np.save(tmp_path / "mask1.npy", mask1)
    return sensed, mask1


@pytest.mark.parametrize("protocol", ["grpc", "rest"])
def test_unfolded_default_and_another_cameras_mask_over_grpc_and_rest(unfolded, tmp_path, protocol):
    task, path = unfolded
    sensed, mask1 = _inputs(tmp_path)
    serving = GrpcServing(path, "cup") if protocol == "grpc" else FakeTfServing(path, "cup")
    with serving as server:
        address = server.target if protocol == "grpc" else server.url
        config = serve_client.ClientConfig(server=address, model="cup", input=str(tmp_path / "sensed.npy"),
                                           output=str(tmp_path / "default.npz"), protocol=protocol, timeout=60)
        default = serve_client.run(config)
        with_mask = serve_client.run(dataclasses.replace(config, mask=str(tmp_path / "mask1.npy"),
                                                         output=str(tmp_path / "mask1.npz")))
        np.save(tmp_path / "bad_mask.npy", np.ones((SIZE, SIZE + 1), np.float32))
        with pytest.raises(DatasetError, match=r"--mask=.*bad_mask\.npy.*\[8, 9\] does not fit.*\[8, 8\]"):
            serve_client.run(dataclasses.replace(config, mask=str(tmp_path / "bad_mask.npy")))
    np.testing.assert_allclose(default, task.predict(sensed).numpy(), atol=1e-5)
    np.testing.assert_allclose(with_mask, task.predict(sensed, mask1).numpy(), atol=1e-5)
    np.testing.assert_allclose(np.load(tmp_path / "mask1.npz")["scene"], with_mask)
    assert np.abs(with_mask - default).max() > 0.01


def test_grpc_errors_are_one_line(unfolded, tmp_path):
    _, path = unfolded
    _inputs(tmp_path)
    with GrpcServing(path, "cup") as server:
        config = serve_client.ClientConfig(server=server.target, model="nope", input=str(tmp_path / "sensed.npy"),
                                           output=str(tmp_path / "o.npz"), protocol="grpc", timeout=30)
        with pytest.raises(serve_client.ServeError, match="gRPC NOT_FOUND: Servable not found"):
            serve_client.run(config)
        with pytest.raises(serve_client.ServeError, match="no signature 'other'.*serving_default.*with_mask"):
            serve_client.run(dataclasses.replace(config, model="cup", signature_name="other"))
    with pytest.raises(ConfigError, match="--server='http://x:1' must be host:port"):
        serve_client.run(dataclasses.replace(config, server="http://x:1"))


def test_warmup_requests_replayed_over_grpc_are_answered(unfolded):
    """What TF Serving does on load: every PredictionLog of assets.extra/tf_serving_warmup_requests is sent
    as a Predict request; the export answers each with scenes for its batch size."""
    _, path = unfolded
    answered = []
    with GrpcServing(path, "cup") as server, grpc.insecure_channel(server.target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        for record in tf.data.TFRecordDataset(f"{path}/assets.extra/tf_serving_warmup_requests"):
            request = prediction_log_pb2.PredictionLog.FromString(record.numpy()).predict_log.request
            request.model_spec.name = "cup"
            answer = stub.Predict(request, timeout=60)
            scene = tf.make_ndarray(answer.outputs["scene"])
            batch = tf.make_ndarray(request.inputs["sensed_image"]).shape[0]
            assert scene.shape == (batch, FRAMES, SIZE, SIZE, 1) and np.all(np.isfinite(scene))
            answered.append((request.model_spec.signature_name, batch))
    assert sorted(answered) == sorted((s, b) for s in ("serving_default", "with_mask") for b in (1, 8, 32, 64))


def _misbehaving_http_server(handler):
    """A raw TCP server on 127.0.0.1 whose every connection runs `handler(conn)` in a thread."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    stop = threading.Event()

    def serve():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            threading.Thread(target=_guarded, args=(handler, conn), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    return f"http://127.0.0.1:{listener.getsockname()[1]}", lambda: (stop.set(), listener.close())


def _guarded(handler, conn):
    try:
        conn.settimeout(30)
        conn.recv(65536)
        handler(conn)
    except OSError:
        pass
    finally:
        conn.close()


def _dribble(data):
    def handler(conn):
        for i in range(len(data)):
            conn.sendall(data[i:i + 1])
            time.sleep(0.5)
    return handler


@pytest.mark.parametrize("what", ["headers", "body"])
def test_a_dribbling_server_cannot_stretch_the_deadline(tmp_path, what):
    _inputs(tmp_path)
    body = b'{"metadata": {"signature_def": {"signature_def": {}}}}'
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
    handler = _dribble(head + body) if what == "headers" else (lambda conn: (conn.sendall(head), _dribble(body)(conn)))
    url, stop = _misbehaving_http_server(handler)
    try:
        config = serve_client.ClientConfig(server=url, model="m", input=str(tmp_path / "sensed.npy"),
                                           output=str(tmp_path / "o.npz"), timeout=1.5)
        start = time.monotonic()
        with pytest.raises(serve_client.ServeError, match=r"no complete answer within --timeout=1.5 s"):
            serve_client.run(config)
        assert time.monotonic() - start < 3.0
    finally:
        stop()


def test_grpc_deadline_covers_the_whole_run(unfolded, tmp_path):
    _, path = unfolded
    _inputs(tmp_path)
    with GrpcServing(path, "cup", delay=0.8) as server:
        config = serve_client.ClientConfig(server=server.target, model="cup", input=str(tmp_path / "sensed.npy"),
                                           output=str(tmp_path / "o.npz"), protocol="grpc", timeout=1.2)
        start = time.monotonic()
        # Metadata (0.8 s) fits, Predict (another 0.8 s) does not: ONE deadline for both calls.
        with pytest.raises(serve_client.ServeError, match=r"Predict: no complete answer within --timeout=1.2 s"):
            serve_client.run(config)
        assert time.monotonic() - start < 2.5
    assert not (tmp_path / "o.npz").exists()


def test_response_size_is_capped(unfolded, tmp_path):
    _, path = unfolded
    _inputs(tmp_path)
    claims = b"HTTP/1.1 200 OK\r\nContent-Length: 1500000000\r\n\r\n{"
    streams = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + b"[" * 300_000
    for handler, match in ((lambda c: c.sendall(claims), "answer of 1500000000 bytes exceeds"),
                           (lambda c: c.sendall(streams), "answer exceeds")):
        url, stop = _misbehaving_http_server(handler)
        try:
            with pytest.raises(serve_client.ServeError, match=rf"{match} --max_response_bytes=100000"):
                serve_client.run(serve_client.ClientConfig(
                    server=url, model="m", input=str(tmp_path / "sensed.npy"), output=str(tmp_path / "o.npz"),
                    timeout=20, max_response_bytes=100_000))
        finally:
            stop()
    with GrpcServing(path, "cup") as server:  # 2 scenes of 4x8x8 floats are > 1000 bytes
        with pytest.raises(serve_client.ServeError, match=r"Predict: answer exceeds --max_response_bytes=1000"):
            serve_client.run(serve_client.ClientConfig(
                server=server.target, model="cup", input=str(tmp_path / "sensed.npy"),
                output=str(tmp_path / "o.npz"), protocol="grpc", timeout=30, max_response_bytes=1000))


ODD_METADATA = [
    ([], "field metadata"),
    ({"metadata": []}, "field metadata is a list"),
    ({"metadata": {"signature_def": {"signature_def": []}}}, "signature_def.signature_def is a list"),
    ({"metadata": {"signature_def": {"signature_def": {"serving_default": 3}}}}, "is a int, expected an object"),
    ({"metadata": {"signature_def": {"signature_def": {"serving_default": {"inputs": [], "outputs": {}}}}}},
     "inputs is a list"),
    ({"metadata": {"signature_def": {"signature_def": {"serving_default": {
        "inputs": {"sensed_image": {"tensor_shape": {"dim": [{"size": [1]}]}}}, "outputs": {}}}}}},
     r"dim\[0\].size is not an integer"),
    ({"metadata": {"signature_def": {"signature_def": {"serving_default": {
        "inputs": {"sensed_image": {"tensor_shape": {"dim": [{"size": "1e999"}]}}}, "outputs": {}}}}}},
     r"dim\[0\].size is not an integer"),
    ({"metadata": {"signature_def": {"signature_def": {"serving_default": {
        "inputs": {"sensed_image": {"tensor_shape": {"dim": "abc"}}}, "outputs": {}}}}}}, "dim is not a list"),
]


@pytest.mark.parametrize("metadata,match", ODD_METADATA)
def test_odd_metadata_gives_one_line_serve_errors(metadata, match):
    with pytest.raises(serve_client.ServeError, match=match) as caught:
        serve_client.signature_shapes(metadata)
    assert "\n" not in str(caught.value)


def test_deeply_nested_answers_are_one_line_errors(tmp_path):
    _inputs(tmp_path)
    nested = b"[" * 200_000 + b"]" * 200_000
    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(nested)
    url, stop = _misbehaving_http_server(lambda c: c.sendall(head + nested))
    try:
        with pytest.raises(serve_client.ServeError, match="nested too deeply"):
            serve_client.run(serve_client.ClientConfig(server=url, model="m", input=str(tmp_path / "sensed.npy"),
                                                       output=str(tmp_path / "o.npz"), timeout=20))
    finally:
        stop()


@pytest.mark.parametrize("protocol", ["rest", "grpc"])
@pytest.mark.parametrize("bad,match", [
    (lambda o: {k: v[:, :2] for k, v in o.items()}, r"'scene' of shape \[2, 2, 8, 8, 1\] for 2 input\(s\), "
                                                   r"expected \[2, 4, 8, 8, 1\]; nothing written"),
    (lambda o: {k: v[:1] for k, v in o.items()}, r"of shape \[1, 4, 8, 8, 1\] for 2 input"),
    (lambda o: {k: np.where(np.arange(v.size).reshape(v.shape) == 5, np.nan, v) for k, v in o.items()},
     r"1 NaN or infinite values in 'scene'; nothing written"),
])
def test_wrong_shaped_or_non_finite_answers_are_not_written(unfolded, tmp_path, protocol, bad, match):
    _, path = unfolded
    _inputs(tmp_path)
    serving = GrpcServing(path, "cup", mutate=bad) if protocol == "grpc" else FakeTfServing(path, "cup", mutate=bad)
    with serving as server:
        address = server.target if protocol == "grpc" else server.url
        with pytest.raises(serve_client.ServeError, match=match):
            serve_client.run(serve_client.ClientConfig(server=address, model="cup", protocol=protocol, timeout=30,
                                                       input=str(tmp_path / "sensed.npy"),
                                                       output=str(tmp_path / "o.npz")))
    assert not (tmp_path / "o.npz").exists()


def test_command_line_grpc_with_mask(unfolded, tmp_path):
    task, path = unfolded
    sensed, mask1 = _inputs(tmp_path, batch=1)
    with GrpcServing(path, "cup") as server:
        done = subprocess.run([sys.executable, "-m", "tfvidgan.serve_client", "--protocol=grpc",
                               f"--server={server.target}", "--model=cup", f"--input={tmp_path / 'sensed.npy'}",
                               f"--mask={tmp_path / 'mask1.npy'}", f"--output={tmp_path / 'out.npz'}"],
                              capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    np.testing.assert_allclose(np.load(tmp_path / "out.npz")["scene"], task.predict(sensed, mask1).numpy(),
                               atol=1e-5)


def test_batching_parameters_match_the_warmup_sizes_and_models_config_parses():
    """configs/batching_parameters.txt: TF Serving's rule (last allowed size == max_batch_size) and the
    exports warm exactly the allowed sizes; configs/models.config parses as a ModelServerConfig."""
    import pathlib
    import re as regex

    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    from tfvidgan.export import WARMUP_BATCH_SIZES

    configs = pathlib.Path(__file__).parent.parent / "configs"
    text = (configs / "batching_parameters.txt").read_text()
    body = "\n".join(line for line in text.splitlines() if not line.startswith("#"))
    allowed = [int(v) for v in regex.findall(r"allowed_batch_sizes:\s*(\d+)", body)]
    max_batch = int(regex.search(r"max_batch_size\s*\{\s*value:\s*(\d+)\s*\}", body).group(1))
    assert allowed == sorted(allowed) and allowed[-1] == max_batch
    assert tuple(allowed) == WARMUP_BATCH_SIZES
    for field in ("batch_timeout_micros", "max_enqueued_batches", "num_batch_threads"):
        assert regex.search(rf"{field}\s*\{{\s*value:\s*\d+\s*\}}", body), field
    config = text_format.Parse((configs / "models.config").read_text(), model_server_config_pb2.ModelServerConfig())
    assert [c.name for c in config.model_config_list.config] == ["cup_reconstructor"]


def test_the_client_and_its_command_line_import_no_tensorflow():
    """ARCHITECTURE.md: the client runs where only numpy (and, for gRPC, `tensorflow-serving-api`) is installed."""
    code = ("import sys, tfvidgan.serve_client, tfvidgan.cli\n"
            "tfvidgan.serve_client.define_flags()\n"
            "print(sorted(m for m in sys.modules if m == 'tensorflow' or m.startswith('tensorflow.')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
