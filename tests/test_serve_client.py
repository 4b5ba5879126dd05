"""serve_client against a local stand-in for TF Serving's REST API running a real SavedModel."""
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

    def __init__(self, export_dir, model_name):
        self.signature = tf.saved_model.load(export_dir).signatures["serving_default"]
        self.model_name = model_name
        self.predict_calls = 0
        inputs = self.signature.structured_input_signature[1]
        outputs = self.signature.structured_outputs
        self.metadata = {
            "model_spec": {"name": model_name, "signature_name": "", "version": "1"},
            "metadata": {"signature_def": {"signature_def": {"serving_default": {
                "inputs": {k: tensor_info(k, v) for k, v in inputs.items()},
                "outputs": {k: tensor_info(k, tf.TensorSpec(v.shape, v.dtype)) for k, v in outputs.items()},
                "method_name": "tensorflow/serving/predict",
            }}}},
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
                    value = np.asarray(body["inputs"]["sensed_image"], np.float32)
                else:
                    value = np.asarray([row["sensed_image"] for row in body["instances"]], np.float32)
                try:
                    result = server.signature(sensed_image=tf.constant(value))
                except (tf.errors.InvalidArgumentError, ValueError) as e:
                    return self.reply(400, {"error": str(e)[:200]})
                outputs = {k: v.numpy().tolist() for k, v in result.items()}
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
    assert done.returncode == 2 and "serve_client: error: --output is required" in done.stderr
    np.save(tmp_path / "bad.npy", np.zeros((3, 3), np.float32))
    done = subprocess.run(args[:-1] + [f"--input={tmp_path / 'bad.npy'}", f"--output={tmp_path / 'o.npz'}"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "bad.npy" in done.stderr and "do not fit input 'sensed_image'" in done.stderr
