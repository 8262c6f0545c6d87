"""Making any message safe to show to whoever uses the app: short, free of server paths, and never HTML.

Library errors name files by their full path, which is right on a command line and wrong in a shared web
app: it tells strangers how the server is laid out, and a hostile file name can be a megabyte long. Known
folders become names relative to them; any other absolute path is cut to its last part.

Gradio 6's toast renders a gr.Error / gr.Warning message as (sanitized) HTML, so a message quoting a user's
'<b>x</b>' or '<img src=...>' showed markup in the page; escaped for everyone, API clients got '&lt;b&gt;' for
the name they sent. `for_reader` escapes for the page, and for any reader not known to be an API client.
"""

from __future__ import annotations

import html
import re
from contextvars import ContextVar
from pathlib import Path

MAX_MESSAGE = 300  # characters of any message shown in the app
MAX_QUOTED = 60  # characters of a user-given string quoted inside a message
# A path starts a word (after a space, a quote, a bracket, "=" or a list's comma), never inside one: a user's name
# like '</b>' or 'a/b' is not a path to cut (its '</b>' was cut to '<b>'). It ends at its closing quote when quoted
# (a folder may have spaces), else at a space: any other character may be in a file name, and a path cut at '<' or
# ',' left the rest of it beside its cut ('/srv/x/</b>.png' became 'x</b>.png', '/srv/a,b/c.png' 'a,b/c.png').
ABSOLUTE_PATH = re.compile(r"(?<=')/[^']*(?=')|(?<=\")/[^\"]*(?=\")|(?<![^\s'\"`(\[{=,;|])/[^\s'\"`]+")
AFTER_PATH = ".,;:)]}"  # punctuation that may follow an unquoted path: kept after its last part


def last_part(path: str) -> str:
    """An absolute path as its last part, punctuation after it kept ('/srv/a/b.png),' -> 'b.png),')."""
    core = path.rstrip(AFTER_PATH) or path
    return (Path(core).name or "/") + path[len(core):]


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
        text = ABSOLUTE_PATH.sub(lambda match: last_part(match.group(0)), text)
        return shorten(text)


def shorten(text: str, limit: int = MAX_MESSAGE) -> str:
    """`text` on one line, at most `limit` characters."""
    text = " ".join(str(text).replace("\x00", "\\0").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def quoted(text: object, limit: int = MAX_QUOTED) -> str:
    """A user-given value for a message: repr, shortened."""
    shown = repr(str(text)[: limit + 1])
    return shown if len(str(text)) <= limit else shown[:-1][: limit] + "…'"


# Whether the event being handled was sent by an API client (gradio_client, the HTTP call/ routes), which shows
# a message as text: set for each event by event_requests.CheckedBlocks. A ContextVar, not a global: each event
# runs in its own context (its worker threads get a copy), and code outside an event sees the default, the page's.
PLAIN_TEXT_READER: ContextVar[bool] = ContextVar("plain_text_reader", default=False)


def for_reader(text: str) -> str:
    """`text` for whoever sent the current event: as it is for an API client; for the page, and anyone not
    known to be an API client, with <, > and & escaped, as the page's toast renders a message as HTML."""
    return text if PLAIN_TEXT_READER.get() else html.escape(text, quote=False)
