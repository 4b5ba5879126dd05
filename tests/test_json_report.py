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
