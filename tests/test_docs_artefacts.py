"""The result files committed under docs/ are what the README and the notes cite: each JSON file parses as
strict JSON (no NaN/Infinity tokens, which `jq` and other strict readers refuse; an undefined value is null)
and no committed artefact is over 2 MiB."""
import json
import pathlib

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs"
LIMIT_BYTES = 2 * 2 ** 20


def _refuse(token):
    raise ValueError(f"{token} is not JSON")


def test_every_committed_json_file_is_strict_json():
    files = sorted(DOCS.rglob("*.json"))
    assert len(files) > 10
    for path in files:
        try:
            json.loads(path.read_text(), parse_constant=_refuse)
        except ValueError as e:
            raise AssertionError(f"{path.relative_to(DOCS.parent)}: {e}") from None
    for path in sorted(DOCS.rglob("*.jsonl")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            try:
                json.loads(line, parse_constant=_refuse) if line.strip() else None
            except ValueError as e:
                raise AssertionError(f"{path.relative_to(DOCS.parent)}:{number}: {e}") from None


def test_no_committed_artefact_is_over_2_mib():
    big = [f"{p.relative_to(DOCS.parent)}: {p.stat().st_size:,} bytes" for p in DOCS.rglob("*")
           if p.is_file() and p.stat().st_size > LIMIT_BYTES]
    assert not big, big
