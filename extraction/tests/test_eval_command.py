from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

SHIPPED = Path(__file__).resolve().parent.parent / "eval" / "sales_threads.jsonl"


def test_eval_extraction_prints_the_table_for_the_shipped_set():
    out = StringIO()
    call_command("eval_extraction", str(SHIPPED), stdout=out)
    text = out.getvalue()
    for key in ("budget", "authority", "need", "timeline", "all (micro)", "grounding rate"):
        assert key in text
    assert "threads: 32" in text


def test_eval_extraction_names_a_missing_file(tmp_path):
    with pytest.raises(CommandError, match="no such file"):
        call_command("eval_extraction", str(tmp_path / "nope.jsonl"))


def test_eval_extraction_llm_needs_configuration(settings):
    settings.LLM_BASE_URL = ""
    with pytest.raises(CommandError, match="LLM_BASE_URL"):
        call_command("eval_extraction", str(SHIPPED), extractor="llm")
