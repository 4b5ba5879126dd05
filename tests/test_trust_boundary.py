"""Trust boundary (README "Trust boundary"): the project's own .npy readers never unpickle.

A pickled `.npy` (an object array) can run code when loaded with `allow_pickle=True`; here its payload
would create a file. The serving client's readers must refuse it with a `DatasetError` naming the file
and the payload must not run; and no `np.load` in the package, tools or benchmarks may allow pickles.
"""
import ast
import pathlib

import numpy as np
import pytest

from tfvidgan.errors import DatasetError

REPO = pathlib.Path(__file__).resolve().parent.parent


class _Payload:
    """Unpickling this creates `marker` (what a crafted .npy could do with any command)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def _crafted_npy(tmp_path):
    marker = tmp_path / "payload_ran"
    path = tmp_path / "crafted.npy"
    np.save(path, np.array([_Payload(marker)], dtype=object), allow_pickle=True)
    return str(path), marker


def test_serving_client_readers_refuse_pickled_npy_without_running_it(tmp_path):
    from tfvidgan import serve_client
    path, marker = _crafted_npy(tmp_path)
    with pytest.raises(DatasetError, match=r"crafted\.npy: cannot read as \.npy: .*allow_pickle=False"):
        serve_client.load_sensed(path)
    with pytest.raises(DatasetError, match=r"--mask=.*crafted\.npy: cannot read as \.npy"):
        serve_client.load_mask(path, [None, 4, 4])
    assert not marker.exists()
    # The payload is real: loading it the unsafe way does run it (so the check above means something).
    np.load(path, allow_pickle=True)
    assert marker.exists()


def _np_load_calls():
    for root in ("tfvidgan", "data_tools", "benchmarks"):
        for file in sorted((REPO / root).rglob("*.py")):
            tree = ast.parse(file.read_text(), filename=str(file))
            for node in ast.walk(tree):
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "load"
                        and isinstance(node.func.value, ast.Name) and node.func.value.id in ("np", "numpy")):
                    yield file.relative_to(REPO), node


def test_no_np_load_in_the_project_allows_pickles():
    calls = list(_np_load_calls())
    # The scan finds the real readers: serve_client's one .npy reader (sensed input and mask) and the CUP
    # dataset's mask.npy.
    assert {str(file) for file, _ in calls} >= {"tfvidgan/serve_client.py", "tfvidgan/data/cup_pairs.py"}
    for file, node in calls:
        for keyword in node.keywords:
            if keyword.arg == "allow_pickle":
                assert isinstance(keyword.value, ast.Constant) and keyword.value.value is False, \
                    f"{file}:{node.lineno} passes allow_pickle={ast.unparse(keyword.value)}"
        assert not any(k.arg is None for k in node.keywords), f"{file}:{node.lineno}: **kwargs may allow pickles"
    # numpy's default is allow_pickle=False (since 1.16.3): a call without the keyword is safe too.
    import inspect
    assert inspect.signature(np.load).parameters["allow_pickle"].default is False
