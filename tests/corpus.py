"""Where the public test corpora are: read in place, never copied into the repository."""

import os
from pathlib import Path

from django.conf import settings

CORPUS_ENV = "THREADLINE_CORPUS"


def corpus_dir() -> Path:
    """$THREADLINE_CORPUS, else ../shared/corpus beside the checkout (where CI has it)."""
    path = Path(os.environ.get(CORPUS_ENV, "../shared/corpus"))
    return path if path.is_absolute() else (Path(settings.BASE_DIR) / path).resolve()
