"""Mail sources, detected by content: .eml files, folders, mbox files (gzipped too), Maildir.

Every source yields ``(raw_bytes, source_label)`` one message at a time, so a large mbox is
streamed, never loaded whole.
"""

from __future__ import annotations

import gzip
import logging
import os
import re
import zlib
from collections.abc import Iterator
from pathlib import Path

logger = logging.getLogger(__name__)
GZIP_MAGIC = b"\x1f\x8b"
_MBOX_FROM = re.compile(rb"^From \S*.*\d")
_QUOTED_FROM = re.compile(rb"^>+From ")
_HEADER_LINE = re.compile(rb"^[!-9;-~]+[ \t]*:")


def _open(path: Path):
    with open(path, "rb") as probe:
        magic = probe.read(2)
    return gzip.open(path, "rb") if magic == GZIP_MAGIC else open(path, "rb")


def file_kind(path: Path) -> str:
    """``mbox`` or ``eml`` for a file, read from its first bytes (after gunzipping)."""
    try:
        with _open(path) as f:
            head = f.read(4096)
    except (OSError, EOFError):
        return "eml"
    head = head.lstrip(b"\r\n")
    if head.startswith(b"From ") and _MBOX_FROM.match(head.split(b"\n", 1)[0]):
        return "mbox"
    return "eml" if _HEADER_LINE.match(head) else "other"


def is_maildir(path: Path) -> bool:
    return path.is_dir() and (path / "cur").is_dir() and (path / "new").is_dir()


def _lines(path: Path) -> Iterator[bytes]:
    """The file's lines; a truncated or corrupt (gzip) file ends early with a warning, not an error."""
    try:
        with _open(path) as f:
            yield from f
    except (OSError, EOFError, zlib.error) as exc:
        logger.warning("%s: stopped reading: %s", path, exc)


def mbox_iter(path: Path) -> Iterator[tuple[bytes, str]]:
    """Messages of an mbox (mboxo or mboxrd; ``>From`` lines unescaped), streamed."""
    label = str(path)
    lines: list[bytes] = []
    count = 0
    previous_blank = True
    for line in _lines(path):
        if line.startswith(b"From ") and previous_blank and _MBOX_FROM.match(line):
            if lines:
                count += 1
                yield _mbox_message(lines), f"mbox:{label}#{count}"
            lines = []
            previous_blank = False
            continue
        if _QUOTED_FROM.match(line):
            line = line[1:]
        lines.append(line)
        previous_blank = line in (b"\n", b"\r\n")
    if lines:
        count += 1
        yield _mbox_message(lines), f"mbox:{label}#{count}"


def _mbox_message(lines: list[bytes]) -> bytes:
    # The blank line before the next "From " belongs to the mbox, not to the message.
    if lines and lines[-1] in (b"\n", b"\r\n"):
        lines = lines[:-1]
    return b"".join(lines)


def maildir_iter(path: Path) -> Iterator[tuple[bytes, str]]:
    for sub in ("cur", "new"):
        folder = path / sub
        for name in sorted(os.listdir(folder)):
            file = folder / name
            if file.is_file() and not name.startswith("."):
                try:
                    yield file.read_bytes(), f"maildir:{file}"
                except OSError as exc:  # moved away by a mail client meanwhile
                    logger.warning("%s: %s", file, exc)


def _file_iter(path: Path, *, named: bool = True) -> Iterator[tuple[bytes, str]]:
    kind = file_kind(path)
    if kind == "mbox":
        yield from mbox_iter(path)
        return
    if kind == "other" and not named:
        return  # in a folder, a file that does not start like mail is not mail
    data = b"".join(_lines(path))
    if data:
        yield data, f"file:{path}"


def paths_iter(paths: list[str | Path]) -> Iterator[tuple[bytes, str]]:
    """Every message under the given paths, each source kind detected by content."""
    for entry in paths:
        path = Path(entry)
        if is_maildir(path):
            yield from maildir_iter(path)
        elif path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs.sort()
                if is_maildir(Path(root)):
                    continue  # walked into below as a Maildir
                for sub in list(dirs):
                    if is_maildir(Path(root) / sub):
                        dirs.remove(sub)
                        yield from maildir_iter(Path(root) / sub)
                for name in sorted(files):
                    if not name.startswith("."):
                        yield from _file_iter(Path(root) / name, named=False)
        else:
            yield from _file_iter(path)


def paths_count_hint(paths: list[str | Path]) -> int | None:
    """How many messages, when that is cheap to know (files only; None with an mbox)."""
    total = 0
    for entry in paths:
        path = Path(entry)
        if path.is_file():
            if file_kind(path) == "mbox":
                return None
            total += 1
        elif is_maildir(path):
            total += sum(len(os.listdir(path / s)) for s in ("cur", "new"))
        else:
            for root, _dirs, files in os.walk(path):
                for name in files:
                    kind = file_kind(Path(root) / name)
                    if kind == "mbox":
                        return None
                    total += kind == "eml"
    return total
