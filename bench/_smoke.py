"""Run every bench in its ``--smoke`` mode, one after another; exit 1 if any fails.

    .venv/bin/python bench/_smoke.py [NAME ...]

A bench is a ``bench/*.py`` file that runs as a script (it has an ``if __name__ ==
"__main__":`` block), whatever its name; helpers (``_*.py``, ``tasks.py``,
``procrastinate_app.py``) have none. So a new bench is picked up by CI (``.ci/run`` runs
this after the tests) without a list to update, and ``tests/test_benches.py`` fails for a
bench without a ``--smoke`` option. Each smoke prints its name, its time and its result;
a failed one's last output lines are shown, and the others still run.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
TIMEOUT_SECONDS = int(os.environ.get("BENCH_SMOKE_TIMEOUT", "900"))


def _is_main_guard(node: ast.stmt) -> bool:
    if not isinstance(node, ast.If) or not isinstance(node.test, ast.Compare):
        return False
    names = [node.test.left, *node.test.comparators]
    return any(isinstance(n, ast.Name) and n.id == "__name__" for n in names) and any(
        isinstance(n, ast.Constant) and n.value == "__main__" for n in names
    )


def benches() -> list[Path]:
    """The bench scripts in ``bench/``, by name."""
    found = []
    for path in sorted(BENCH.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        if path.name != Path(__file__).name and any(_is_main_guard(node) for node in tree.body):
            found.append(path)
    return found


def has_smoke_option(path: Path) -> bool:
    """Whether the script declares ``--smoke`` with argparse (``add_argument("--smoke", ...)``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "add_argument"
            and any(isinstance(a, ast.Constant) and a.value == "--smoke" for a in node.args)
        ):
            return True
    return False


def main(argv: list[str]) -> int:
    chosen = benches()
    if argv:
        chosen = [p for p in chosen if p.stem in argv]
        missing = sorted(set(argv) - {p.stem for p in chosen})
        if missing:
            print(f"no such bench: {', '.join(missing)}", file=sys.stderr)
            return 2
    failed = []
    for path in chosen:
        name = f"bench/{path.name}"
        if not has_smoke_option(path):
            print(f"== {name} --smoke: FAILED, it has no --smoke option", flush=True)
            failed.append(name)
            continue
        print(f"== {name} --smoke", flush=True)
        started = time.monotonic()
        try:
            done = subprocess.run(
                [sys.executable, str(path), "--smoke"],
                cwd=BENCH.parent,
                capture_output=True,
                text=True,
                timeout=TIMEOUT_SECONDS,
            )
            code, output = done.returncode, done.stdout + done.stderr
        except subprocess.TimeoutExpired as exc:
            code = "timeout"
            output = (exc.stdout or b"").decode(errors="replace") + (exc.stderr or b"").decode(errors="replace")
        seconds = time.monotonic() - started
        if code == 0:
            print(f"   ok in {seconds:.0f} s", flush=True)
            continue
        failed.append(name)
        reason = f"no end after {TIMEOUT_SECONDS} s" if code == "timeout" else f"exit status {code}"
        print(f"   FAILED in {seconds:.0f} s ({reason}); its last lines:", flush=True)
        for line in output.strip().splitlines()[-25:]:
            print(f"   | {line}", flush=True)
    print(
        f"{len(chosen) - len(failed)} of {len(chosen)} bench smokes passed"
        + (f"; failed: {', '.join(failed)}" if failed else "")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
