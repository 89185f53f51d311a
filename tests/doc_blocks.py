"""Run the code blocks of a Markdown page (the README, a page of docs/) as a reader would.

Every ```python and ```bash block of a page runs **in order, in one empty folder**: the
Python blocks in one namespace of one fresh interpreter, the shell blocks through bash in the
same folder between them. A block may use what earlier blocks defined and the files they
wrote, but nothing the test adds: there is no setup code.

Shell lines are read one by one, split at ``&&``. A ``gpuresample ...`` command runs (the
installed console script, else ``python -m gpuresample``, the same command). Commands that
install packages, create virtual environments, or run the test suite, the documentation
build, a benchmark or the notebook re-store recipe do not run here (each has its own test or
is a tool for developers); they are listed in :data:`NOT_RUN`. Any other command is an error,
so a new kind of block cannot be skipped silently. Python blocks that import a package this
machine lacks (CuPy, dask-cuda, ...) are reported as skipped, naming it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import gpuresample

#: ```python, ```bash and ```sh blocks, in order: (language, code).
BLOCK = re.compile(r"^```(python|bash|sh)\n(.*?)^```", re.S | re.M)

#: Shell commands (a line, or one ``&&`` segment of it) that are shown but not run, by reason.
NOT_RUN = {
    r"^python3? -m venv\b": "creates a virtual environment",
    r"^(\.|source) \S*activate$": "activates a virtual environment",
    r"^(python3? -m )?pip install\b": "installs packages (CI installs them by the README's test command)",
    r"^python3? -m pytest\b": "runs the test suite (this is it)",
    r"^python3? -m sphinx\b": "builds the documentation (tests/test_docs.py does)",
    r"^(python3?|bash) benchmarks/": "a benchmark (rewrites benchmarks/results/)",
    r"^(\w+=\S+ )*python3? - <<'EOF'$": "re-stores the notebooks' outputs (tests/test_notebooks.py checks them)",
}


def blocks(text: str) -> list:
    """``[(language, code), ...]`` of the page's Python and shell blocks, in order."""
    return [("python" if lang == "python" else "bash", code) for lang, code in BLOCK.findall(text)]


def shell_commands(code: str) -> tuple:
    """``(commands to run, reasons for those not run)`` of one shell block.

    Raises ``ValueError`` for a command that is neither a ``gpuresample`` command nor in
    :data:`NOT_RUN`.
    """
    run, skipped = [], []
    lines = code.splitlines()
    if lines and lines[0].rstrip().endswith("<<'EOF'"):  # a here-document: one command
        reasons = [r for p, r in NOT_RUN.items() if re.search(p, lines[0].strip())]
        if not reasons:
            raise ValueError(f"shell command {lines[0]!r} is not listed in tests/doc_blocks.py NOT_RUN")
        return [], reasons[:1]
    for line in lines:
        line = line.split(" #")[0].strip() if not line.lstrip().startswith("#") else ""
        for segment in (s.strip() for s in line.split("&&")):
            if not segment:
                continue
            reasons = [r for p, r in NOT_RUN.items() if re.search(p, segment)]
            if reasons:
                skipped.append(reasons[0])
            elif segment.startswith("gpuresample ") or segment == "gpuresample":
                run.append(segment)
            else:
                raise ValueError(f"shell command {segment!r} is neither a gpuresample command nor listed "
                                 "in tests/doc_blocks.py NOT_RUN")
    return run, skipped


#: Runs the blocks given as a JSON list in one folder; one JSON line per block.
DRIVER = r'''
import contextlib, importlib.util, io, json, os, re, shutil, subprocess, sys, traceback

def missing(code):
    for name in re.findall(r"^\s*(?:import|from)\s+([A-Za-z_]\w*)", code, re.M):
        if importlib.util.find_spec(name) is None:
            return name
    return None

def shell(commands):
    script = os.path.join(os.path.dirname(sys.executable), "gpuresample")
    prefix = "set -e\n"
    if not os.path.exists(script):
        prefix += 'gpuresample() { "%s" -m gpuresample "$@"; }\n' % sys.executable
    done = subprocess.run(["bash", "-c", prefix + "\n".join(commands)], capture_output=True,
                          encoding="utf-8", errors="replace")
    if done.returncode != 0:
        raise RuntimeError(f"exit code {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")

if __name__ == "__main__":          # worker processes (Dask's spawn) import this file again
    items = json.load(open(sys.argv[1]))
    namespace = {"__name__": "__main__"}
    for index, (kind, code) in enumerate(items):
        absent = missing(code) if kind == "python" else None
        if absent:
            print(json.dumps({"index": index, "skip": f"imports {absent}, not installed here"}), flush=True)
            continue
        try:
            if kind == "python":
                with contextlib.redirect_stdout(io.StringIO()):
                    exec(compile(code, f"block {index}", "exec"), namespace)
            elif code:
                shell(code)
        except BaseException:
            print(json.dumps({"index": index, "error": traceback.format_exc()[-4000:]}), flush=True)
        else:
            print(json.dumps({"index": index, "ok": True}), flush=True)
'''


def run_page(text: str, folder: Path, timeout: float) -> tuple:
    """Run a page's blocks in ``folder``; returns ``(blocks, {index: result})``.

    A result is ``{"ok": True}``, ``{"skip": reason}`` or ``{"error": text}``. Shell blocks
    whose commands are all shown-not-run are skipped with their reasons.
    """
    items, found, notes = [], blocks(text), {}
    for index, (kind, code) in enumerate(found):
        if kind == "bash":
            commands, skipped = shell_commands(code)
            if not commands:
                notes[index] = "; ".join(dict.fromkeys(skipped))
            items.append((kind, commands))
        else:
            items.append((kind, code))
    (folder / "blocks.json").write_text(json.dumps(items))
    (folder / "run_blocks.py").write_text(DRIVER)
    env = dict(os.environ)
    # The gpuresample this test imports, for the blocks' interpreter and commands (an installed
    # package: its own folder; a checkout run in place: the checkout).
    package_root = str(Path(gpuresample.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    done = subprocess.run([sys.executable, "run_blocks.py", "blocks.json"], cwd=folder, capture_output=True,
                          encoding="utf-8", errors="replace", timeout=timeout, env=env)
    results = {}
    for line in done.stdout.splitlines():
        if line.startswith('{"index"'):
            result = json.loads(line)
            results[result["index"]] = result
    if len(results) != len(items):
        raise AssertionError(f"the block driver stopped early:\n{done.stderr[-3000:]}")
    for index, reason in notes.items():
        results[index] = {"skip": reason}
    return found, results
