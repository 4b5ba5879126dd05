"""`tfvidgan.json_report.machine`: the one description of the machine every report's wall times carry."""
import json
import subprocess
import sys

from tfvidgan.json_report import BFLOAT16_CPU_FEATURES, cpuinfo, machine
from tfvidgan.reproduce_report import _bfloat16_note


def test_machine_is_json_and_names_the_bfloat16_units_of_this_cpu():
    m = machine()
    assert json.loads(json.dumps(m)) == m
    assert m["cpus"] >= 1 and m["python"].count(".") == 2
    assert set(m["cpu_bfloat16"]) <= set(BFLOAT16_CPU_FEATURES)
    try:
        with open("/proc/cpuinfo") as f:
            flags = next(line for line in f if line.startswith("flags")).split(":", 1)[1].split()
    except (OSError, StopIteration):
        flags = []
    assert m["cpu_bfloat16"] == [flag for flag in BFLOAT16_CPU_FEATURES if flag in flags]


def test_cpuinfo_reads_the_first_processor_only(tmp_path):
    path = tmp_path / "cpuinfo"
    path.write_text("processor\t: 0\nmodel name\t: Example CPU A\nflags\t\t: fpu sse2 amx_tile amx_bf16\n\n"
                    "processor\t: 1\nmodel name\t: Example CPU B\nflags\t\t: fpu avx512_bf16\n")
    assert cpuinfo(str(path)) == ("Example CPU A", ["amx_bf16", "amx_tile"])
    assert cpuinfo(str(tmp_path / "absent"))[1] == []


def test_machine_does_not_import_tensorflow():
    code = ("import sys; from tfvidgan.json_report import machine; m = machine(); "
            "assert 'tensorflow' not in sys.modules, 'imported'; print(m['tensorflow'])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().split(".")[0].isdigit()  # the installed version, read without importing it


def test_the_reproduce_table_names_bfloat16_units_only_when_present():
    assert _bfloat16_note({"cpu_bfloat16": ["avx512_bf16", "amx_bf16"]}) == ", bfloat16 units: avx512_bf16, amx_bf16"
    assert _bfloat16_note({"cpu_bfloat16": []}) == "" and _bfloat16_note({}) == ""


def test_write_json_is_atomic_writes_nan_as_null_and_keeps_the_old_file_on_failure(tmp_path):
    import math

    import numpy as np
    import pytest

    from tfvidgan.json_report import read_json, write_json

    path = tmp_path / "deep" / "report.json"
    write_json(str(path), {"a": float("nan"), "b": [1.5, math.inf], "c": np.float32(0.25), "d": np.float32("nan"),
                           "e": np.int64(3)})
    assert json.loads(path.read_text()) == {"a": None, "b": [1.5, None], "c": 0.25, "d": None, "e": 3}
    assert read_json(str(path), "report") == {"a": None, "b": [1.5, None], "c": 0.25, "d": None, "e": 3}
    before = path.read_text()
    with pytest.raises(TypeError):
        write_json(str(path), {"a": object()})  # not JSON: the old file stays whole, no temporary is left
    assert path.read_text() == before and sorted(p.name for p in path.parent.iterdir()) == ["report.json"]


def test_read_json_names_the_flag_and_the_file(tmp_path):
    import pytest

    from tfvidgan.errors import ConfigError
    from tfvidgan.json_report import read_json

    with pytest.raises(ConfigError, match=r"^--report='.*absent.json': no such file$"):
        read_json(str(tmp_path / "absent.json"), "report")
    (tmp_path / "bad.json").write_text('{"a": 1')
    with pytest.raises(ConfigError, match=r"^--report='.*bad.json': not a readable JSON file"):
        read_json(str(tmp_path / "bad.json"), "report")
    with pytest.raises(ConfigError, match=r"^--report='.*': not a readable JSON file"):
        read_json(str(tmp_path), "report")  # a directory


def test_read_json_of_a_kept_file_names_the_path_may_allow_it_missing_and_gives_the_hint(tmp_path):
    import pytest

    from tfvidgan.errors import ConfigError
    from tfvidgan.json_report import read_json

    absent = tmp_path / "absent.json"
    assert read_json(str(absent), missing_ok=True) is None
    with pytest.raises(ConfigError, match=rf"^{absent}: no such file$"):
        read_json(str(absent))
    (tmp_path / "bad.json").write_text("[1,")
    with pytest.raises(ConfigError, match=r"bad.json: not a readable JSON file .*; delete it to redo that stage$"):
        read_json(str(tmp_path / "bad.json"), missing_ok=True, hint="delete it to redo that stage")


def test_run_files_are_strict_json(tmp_path):
    """run_config.json (via the run lock) and export selections write NaN as null, so strict readers parse
    them; a NaN config field read back compares equal (a resume is not a 'changed setting')."""
    import dataclasses
    import math

    import pytest

    from tfvidgan.errors import ConfigError
    from tfvidgan.export import write_selection
    from tfvidgan.training.run_lock import RUN_CONFIG_FILE, check_run_config

    def strict(text):
        def refuse(token):
            raise ValueError(token)
        return json.loads(text, parse_constant=refuse)

    @dataclasses.dataclass
    class Config:
        rate: float = math.nan
        steps: int = 3

    check_run_config(str(tmp_path), Config(), {"rate": math.nan}, has_checkpoint=False)
    record = strict((tmp_path / RUN_CONFIG_FILE).read_text())
    assert record["config"] == {"rate": None, "steps": 3} and record["flags"]["rate"] is None
    check_run_config(str(tmp_path), Config(), {}, has_checkpoint=True)  # same model: no error
    (tmp_path / RUN_CONFIG_FILE).write_text('{"config": ')  # cut short: named, with what to do
    with pytest.raises(ConfigError, match=r"run_config.json: not a readable JSON file .*; it records the model the "
                                          r"checkpoints were written with; restore it, or delete it"):
        check_run_config(str(tmp_path), Config(), {}, has_checkpoint=True)
    path = write_selection(str(tmp_path / "export"), {"metric": "m", "value": 0.5, "probe": {"x": math.inf}})
    assert strict(open(path).read()) == {"metric": "m", "value": 0.5, "probe": {"x": None}}
