"""Making any message safe to show to whoever uses the app: short, and free of server paths.

Library errors name files by their full path, which is right on a command line and wrong in a shared web
app: it tells strangers how the server is laid out, and a hostile file name can be a megabyte long. Known
folders become names relative to them; any other absolute path is cut to its last part.
"""

from __future__ import annotations

import re
from pathlib import Path

MAX_MESSAGE = 300  # characters of any message shown in the app
MAX_QUOTED = 60  # characters of a user-given string quoted inside a message
# A path starts a word (after a space, a quote, a bracket, "=" or a list's comma), never inside one: a user's name
# like '</b>' or 'a/b' is not a path to cut (its '</b>' was cut to '<b>').
ABSOLUTE_PATH = re.compile(r"(?<![^\s'\"`(\[{=,;|])(/[^\s'\"<>|,;()]+)")


class MessageCleaner:
    """Rewrites paths under known folders (longest first) to relative labels, then shortens the text."""

    def __init__(self, folders: dict[Path, str]):
        pairs = {}
        for folder, label in folders.items():
            for variant in {str(folder), str(Path(folder).resolve())}:
                pairs[variant.rstrip("/")] = label
        self.pairs = sorted(pairs.items(), key=lambda item: -len(item[0]))

    def with_folders(self, folders: dict[Path, str]) -> "MessageCleaner":
        """A cleaner that also knows `folders` (e.g. one run's unpacked upload)."""
        return MessageCleaner({**{Path(f): label for f, label in self.pairs}, **folders})

    def __call__(self, text: str) -> str:
        text = str(text)[: MAX_MESSAGE * 20]  # work on a bounded string whatever came in
        for folder, label in self.pairs:
            text = text.replace(folder + "/", label + "/" if label else "").replace(folder, label or ".")
        text = ABSOLUTE_PATH.sub(lambda match: Path(match.group(1)).name or "/", text)
        return shorten(text)


def shorten(text: str, limit: int = MAX_MESSAGE) -> str:
    """`text` on one line, at most `limit` characters."""
    text = " ".join(str(text).replace("\x00", "\\0").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def quoted(text: object, limit: int = MAX_QUOTED) -> str:
    """A user-given value for a message: repr, shortened."""
    shown = repr(str(text)[: limit + 1])
    return shown if len(str(text)) <= limit else shown[:-1][: limit] + "…'"
