"""Per-field precision, recall, F1 and grounding rate of an extractor on labelled threads."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from extraction.evaluation import evaluate, load_labelled
from extraction.extractors.llm import LLMConfig, LLMExtractor
from extraction.extractors.rules import RulesExtractor
from extraction.schemas import schema_get


class Command(BaseCommand):
    help = (
        "Evaluate an extractor on a JSONL file of labelled threads (one thread a line: id, messages "
        "[{id, from, date, text}], expected {field: value or null}) and print per-field precision, "
        "recall, F1 and the grounding rate. The shipped set is extraction/eval/sales_threads.jsonl."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path, help="JSONL file of labelled threads.")
        parser.add_argument("--extractor", choices=["rules", "llm"], default="rules")
        parser.add_argument("--schema", default="sales_bant")
        parser.add_argument("--mistakes", action="store_true", help="List every wrong or missed value.")

    def handle(self, *args, file: Path, extractor: str, schema: str, mistakes: bool, **options):
        if not file.exists():
            raise CommandError(f"{file}: no such file")
        try:
            rows = load_labelled(file)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        if extractor == "llm":
            config = LLMConfig.from_settings()
            if config is None:
                raise CommandError("--extractor llm needs LLM_BASE_URL and LLM_MODEL in the environment")
            chosen = LLMExtractor(config)
        else:
            chosen = RulesExtractor()
        report = evaluate(chosen, rows, schema_get(schema), reply_text=_reply_text())
        self.stdout.write(
            f"{chosen.name} extractor on {file.name} ({schema_get(schema).id} v{schema_get(schema).version})"
        )
        self.stdout.write(report.table())
        if mistakes:
            self.stdout.write("\n".join(report.mistakes) or "no mistakes")


def _reply_text():
    """The labelled texts are whole bodies: the extractor reads what the sender wrote, cut by
    the same reply-text function ingestion uses (quoted history and signatures removed)."""
    from threads.ingest.reply import reply_text

    return reply_text
