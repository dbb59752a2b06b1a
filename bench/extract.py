"""Threads per second for the rules extractor over 1,000 threads, beside a bare reference.

The reference, measured in the same run on the same texts, is one pass of Python's `re` with
a single money-like pattern over every message: the least any pattern-based extractor does.
The ratio says how many such passes one full extraction costs. Run: `.venv/bin/python bench/extract.py`
(`--smoke`: 50 threads, in a second; exit status 1 if the extractor proposes nothing).
"""

import argparse
import os
import re
import sys
import time
from pathlib import Path

# This folder holds queue.py, which would shadow the standard library's queue module.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from extraction.evaluation import load_labelled, thread_inputs  # noqa: E402
from extraction.extractors.rules import RulesExtractor  # noqa: E402
from extraction.schemas import SALES_BANT_V1  # noqa: E402

THREADS = 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=THREADS, help=f"Threads extracted (default {THREADS}).")
    parser.add_argument("--smoke", action="store_true", help="50 threads: checks that it runs and finds values.")
    args = parser.parse_args()
    count = 50 if args.smoke else args.threads
    rows = load_labelled(ROOT / "extraction" / "eval" / "sales_threads.jsonl")
    threads = [thread_inputs(rows[i % len(rows)]) for i in range(count)]
    messages = sum(len(t) for t in threads)
    extractor = RulesExtractor()
    extractor.extract(threads[0], SALES_BANT_V1)  # warm the regex caches

    started = time.perf_counter()
    proposals = sum(len(extractor.extract(t, SALES_BANT_V1).proposals) for t in threads)
    ours = time.perf_counter() - started

    pattern = re.compile(r"[$€£]\s?\d[\d,.]*\s?[kKmM]?")
    started = time.perf_counter()
    hits = sum(len(pattern.findall(m.reply_text)) for t in threads for m in t)
    reference = time.perf_counter() - started

    if not proposals:
        sys.exit("extract bench: the rules extractor proposed no value over the labelled threads")
    print(f"threads: {count}  messages: {messages}  proposals: {proposals}  (reference hits: {hits})")
    print(f"rules extractor     {count / ours:10.1f} threads/s   ({ours:.2f} s)")
    print(f"one-regex reference {count / reference:10.1f} threads/s   ({reference:.3f} s)")
    print(f"ratio (reference time / ours): 1 : {ours / reference:.0f}")


if __name__ == "__main__":
    main()
