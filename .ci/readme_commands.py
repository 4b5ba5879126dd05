"""Prints one of the two set-up commands that open README.md: `main` (first) or `test` (second).

CI runs the README's own test command through this, so the documented command is the tested one.
"""
import re
import sys
from pathlib import Path

block = re.search(r"```(?:bash|sh)?\n(.*?)```", Path(__file__).parent.parent.joinpath("README.md").read_text(),
                  re.S)
commands = [line for line in block.group(1).splitlines() if line.strip() and not line.lstrip().startswith("#")]
if len(commands) != 2:
    sys.exit(f"README.md's first code block must hold exactly two commands, found {len(commands)}")
print(commands[{"main": 0, "test": 1}[sys.argv[1]]])
