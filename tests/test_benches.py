"""Benches cannot rot unseen: each has a ``--smoke`` mode, and CI's runner fails when one fails.

The benches themselves are never run here (CI runs their smokes after the tests,
``bench/_smoke.py``); these tests read their source and drive the runner on tiny scripts.
"""

from __future__ import annotations

import textwrap

import pytest

from bench import _smoke

BENCHES = _smoke.benches()


def test_the_benches_are_found_and_the_helpers_are_not():
    names = {path.name for path in BENCHES}
    assert {"console.py", "extract.py", "ingest.py", "queue.py", "scale.py"} <= names
    assert not names & {"tasks.py", "procrastinate_app.py", "_record.py", "_benchdb.py", "_smoke.py", "__init__.py"}


@pytest.mark.parametrize("path", BENCHES, ids=lambda p: p.name)
def test_every_bench_has_a_smoke_option(path):
    assert _smoke.has_smoke_option(path), f"bench/{path.name} has no --smoke option: add one that runs in seconds"


def _write(folder, name, body):
    (folder / name).write_text(textwrap.dedent(body))


GOOD = """
    import argparse
    parser = argparse.ArgumentParser()
    parser.add_argument("--smoke", action="store_true")
    if __name__ == "__main__":
        parser.parse_args()
"""


def test_the_runner_passes_when_every_smoke_passes(tmp_path, monkeypatch, capsys):
    _write(tmp_path, "good.py", GOOD)
    _write(tmp_path, "helper.py", "VALUE = 1\n")  # no main block: not a bench, not run
    monkeypatch.setattr(_smoke, "BENCH", tmp_path)
    assert _smoke.main([]) == 0
    out = capsys.readouterr().out
    assert "== bench/good.py --smoke" in out and "helper" not in out
    assert "1 of 1 bench smokes passed" in out


def test_the_runner_fails_naming_a_failed_smoke_and_one_without_smoke(tmp_path, monkeypatch, capsys):
    _write(tmp_path, "good.py", GOOD)
    _write(
        tmp_path,
        "broken.py",
        """
        import argparse, sys
        parser = argparse.ArgumentParser()
        parser.add_argument("--smoke", action="store_true")
        if __name__ == "__main__":
            parser.parse_args()
            sys.exit("broken bench: null value in column base_subject")
        """,
    )
    _write(
        tmp_path,
        "nosmoke.py",
        """
        import argparse
        if __name__ == "__main__":
            argparse.ArgumentParser().parse_args()
        """,
    )
    monkeypatch.setattr(_smoke, "BENCH", tmp_path)
    assert _smoke.main([]) == 1
    out = capsys.readouterr().out
    assert "bench/nosmoke.py --smoke: FAILED, it has no --smoke option" in out
    assert "FAILED" in out.split("== bench/broken.py --smoke")[1].split("==")[0]
    assert "| broken bench: null value in column base_subject" in out
    assert "1 of 3 bench smokes passed; failed: bench/broken.py, bench/nosmoke.py" in out
