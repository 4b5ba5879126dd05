"""Every command-line program (library, data tools and benchmarks) ends the same way: through
`tfvidgan.cli.run`, so a user error is one line naming the flag or file, with exit code 1."""
import ast
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("tfvidgan", "data_tools", "benchmarks")


def _programs():
    """(path, the call in its `if __name__ == "__main__":` block) for every module that has one."""
    found = []
    for package in PACKAGES:
        for root, _, files in os.walk(os.path.join(REPO, package)):
            for name in sorted(files):
                if not name.endswith(".py"):
                    continue
                path = os.path.join(root, name)
                with open(path) as f:
                    tree = ast.parse(f.read(), path)
                for node in tree.body:
                    if (isinstance(node, ast.If) and isinstance(node.test, ast.Compare)
                            and isinstance(node.test.left, ast.Name) and node.test.left.id == "__name__"):
                        calls = [ast.unparse(n.func) for n in ast.walk(node) if isinstance(n, ast.Call)]
                        found.append((os.path.relpath(path, REPO), calls))
    return found


def test_every_program_runs_through_cli_run():
    programs = _programs()
    # The library's trainers, evaluate and sample, the data tools and the benchmarks are all found.
    names = {path for path, _ in programs}
    assert {"tfvidgan/train_video.py", "data_tools/make_bouncing_balls.py", "benchmarks/quality.py",
            "benchmarks/render_floor.py"} <= names, names
    offenders = {path: calls for path, calls in programs
                 if not any(c.endswith("cli.run") for c in calls) or any(c.endswith("app.run") for c in calls)}
    assert not offenders, f"programs not ending through tfvidgan.cli.run: {offenders}"


def test_a_benchmarks_user_error_is_one_line_naming_the_flag(tmp_path):
    missing = str(tmp_path / "missing.json")
    result = subprocess.run([sys.executable, "-m", "benchmarks.quality", "video", f"--report={missing}"],
                            cwd=REPO, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().splitlines()[-1] == f"tfvidgan.errors.ConfigError: --report={missing!r}: no such file"
    assert "Traceback" not in result.stderr and result.stdout == ""
