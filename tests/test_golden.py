"""The golden corpus: today's results, bit for bit, for every case in ``tests/golden/corpus.json``.

Each case rebuilds its input and arguments from the corpus, resamples on the CPU backend and
compares the SHA-256 of the output bytes (or the exception type of a refused call, and the
warnings raised) with what was recorded. Regenerate the corpus only on purpose, with
``python tests/golden/make_golden.py``: a change here means the library's results changed.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

GOLDEN = Path(__file__).resolve().parent / "golden"


def _load_generator():
    spec = importlib.util.spec_from_file_location("golden_make_golden", GOLDEN / "make_golden.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_golden = _load_generator()
CORPUS = json.loads((GOLDEN / "corpus.json").read_text())
CASES = CORPUS["cases"]


def test_corpus_header():
    header = CORPUS["header"]
    assert header["format"] == make_golden.FORMAT
    assert header["cases"] == len(CASES)
    assert len({case["id"] for case in CASES}) == len(CASES), "case ids must be unique"
    assert header["chunked_differing_from_unchunked"] == [], "recorded: chunked results that differ from unchunked"


def _describe(expected: dict, got: dict) -> str:
    lines = []
    for key in ("shape", "dtype", "nan_count", "inf_count", "finite_min", "finite_max"):
        if key in expected or key in got:
            mark = "" if expected.get(key) == got.get(key) else "   <-- differs"
            lines.append(f"  {key}: expected {expected.get(key)!r}, got {got.get(key)!r}{mark}")
    got_samples = dict(map(tuple, got.get("samples", [])))
    lines.append("  samples [flat index: expected -> got]:")
    for index, value in expected.get("samples", []):
        other = got_samples.get(index, "<missing>")
        mark = "" if other == value else "   <-- differs"
        lines.append(f"    {index}: {value!r} -> {other!r}{mark}")
    if "sha256_nan_canonical" in expected and expected.get("sha256_nan_canonical") == got.get("sha256_nan_canonical"):
        lines.append("  (equal once every NaN is written as the same NaN: only NaN bit patterns differ)")
    return "\n".join(lines)


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_golden(case):
    assert case["args"].get("backend") == "cpu"
    data = make_golden.make_input(case["input"])
    assert make_golden.digest(data) == case["input_sha256"], \
        f"{case['id']}: the input recipe {case['input']} no longer gives the recorded input (NumPy's generator?)"

    got = make_golden.run_case(case)

    where = f"case {case['id']!r}, resample(data, **{case['args']})"
    if "refused" in case:
        if "refused" not in got:
            pytest.fail(f"{where}: was refused with {case['refused']} ({case['message']}), now returns "
                        f"shape {got['result']['shape']} dtype {got['result']['dtype']}", pytrace=False)
        if got["refused"] != case["refused"]:
            pytest.fail(f"{where}: was refused with {case['refused']}, now with {got['refused']}: {got['message']}",
                        pytrace=False)
    else:
        if "result" not in got:
            pytest.fail(f"{where}: now refused with {got['refused']}: {got['message']}", pytrace=False)
        expected, result = case["result"], got["result"]
        if (result["shape"], result["dtype"]) != (expected["shape"], expected["dtype"]):
            pytest.fail(f"{where}: shape/dtype changed:\n{_describe(expected, result)}", pytrace=False)
        if result["sha256"] != expected["sha256"]:
            pytest.fail(f"{where}: output bytes changed (sha256 {expected['sha256'][:16]}... -> "
                        f"{result['sha256'][:16]}...):\n{_describe(expected, result)}", pytrace=False)
    if got["warnings"] != case["warnings"]:
        pytest.fail(f"{where}: warnings changed: {case['warnings']} -> {got['warnings']}", pytrace=False)

def test_digest_is_of_c_order_native_bytes():
    """The corpus's hash: the bytes of the array in C order, native byte order."""
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert make_golden.digest(x.T) == make_golden.digest(np.ascontiguousarray(x.T))
    assert make_golden.digest(x.astype(">f4")) != make_golden.digest(x) or np.little_endian is False
