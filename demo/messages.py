"""Making any message safe to show to whoever uses the app: short, free of server paths, and never HTML.

Library errors name files by their full path, which is right on a command line and wrong in a shared web
app: it tells strangers how the server is laid out, and a hostile file name can be a megabyte long. Known
folders become names relative to them; any other absolute path is cut to its last part. What a user typed
(`TypedTextError`: a dataset folder, a model name) is shown as typed: echoing it back tells them nothing about the
server. The library's messages, and the app's own, name tasks as the command line does (--task paired, "the paired
task"); the page names them by the Train form's labels.

Gradio 6's toast renders a gr.Error / gr.Warning message as (sanitized) HTML, so a message quoting a user's
'<b>x</b>' or '<img src=...>' showed markup in the page; escaped for everyone, API clients got '&lt;b&gt;' for
the name they sent. `for_reader` escapes for the page, and for any reader not known to be an API client.
"""

from __future__ import annotations

import html
import re
from contextvars import ContextVar
from pathlib import Path
from typing import Iterable, Mapping, Optional

from pix2pix_core.errors import Pix2PixError

MAX_MESSAGE = 300  # characters of any message shown in the app
MAX_QUOTED = 60  # characters of a user-given string quoted inside a message
# A path starts a word (after a space, a quote, a bracket, "=" or a list's comma), never inside one: a user's name
# like '</b>' or 'a/b' is not a path to cut (its '</b>' was cut to '<b>'). It ends at its closing quote when quoted
# (a folder may have spaces), else at a space (unless more of its folders follow: `path_end`): any
# other character may be in a file name, and a path cut at '<' or ',' left the rest of it beside its cut
# ('/srv/x/</b>.png' became 'x</b>.png', '/srv/a,b/c.png' 'a,b/c.png').
ABSOLUTE_PATH = re.compile(r"(?<=')/[^']*(?=')|(?<=\")/[^\"]*(?=\")|(?P<bare>(?<![^\s'\"`(\[{=,;|])/[^\s'\"`]+)")
AFTER_PATH = ".,;:)]}"  # punctuation that may follow an unquoted path: kept after its last part
NEXT_WORD = re.compile(r" ([^\s'\"`]+)")  # the word after an unquoted path: more of its folders if it has a '/'
# Tasks as the library's messages name them, the command line's words: '--task paired', 'for the aligned or
# colorize task', 'the unpaired (CycleGAN) task'
CLI_TASK = r"(?:facades|colorize|aligned|paired|unpaired)(?: \(CycleGAN\))?"
CLI_TASK_LIST = rf"{CLI_TASK}(?:(?:, | or ){CLI_TASK})*"
CLI_TASKS = re.compile(rf"--task ({CLI_TASK_LIST})|\bthe ({CLI_TASK_LIST}) task\b")


def last_part(path: str) -> str:
    """An absolute path as its last part, punctuation after it kept ('/srv/a/b.png),' -> 'b.png),')."""
    core = path.rstrip(AFTER_PATH) or path
    return (Path(core).name or "/") + path[len(core):]


class TypedTextError(Pix2PixError):
    """A refusal that quotes (with `quoted`) values the user typed: a cleaner shows them as typed. Cut as server
    paths, a typed '/etc' read "'etc' is outside the data root"; echoed back to the one who typed it, a value
    tells nothing about the server."""

    def __init__(self, message: str, *typed: object):
        super().__init__(message)
        self.typed = tuple(str(value) for value in typed)


class MessageCleaner:
    """Rewrites paths under known folders (longest first) to relative labels, cuts any other absolute path to its
    last part, names tasks by the page's labels (`tasks`: the command line's name -> the form's label; not for an
    API client, whose /train_start takes the command line's), then shortens the text."""

    def __init__(self, folders: dict[Path, str], tasks: Optional[Mapping[str, str]] = None):
        pairs = {}
        for folder, label in folders.items():
            for variant in {str(folder), str(Path(folder).resolve())}:
                pairs[variant.rstrip("/")] = label
        self.pairs = sorted(pairs.items(), key=lambda item: -len(item[0]))
        self.tasks = dict(tasks or {})

    def with_folders(self, folders: dict[Path, str]) -> "MessageCleaner":
        """A cleaner that also knows `folders` (e.g. one run's unpacked upload)."""
        return MessageCleaner({**{Path(f): label for f, label in self.pairs}, **folders}, self.tasks)

    def __call__(self, message: str | BaseException) -> str:
        """`message` (a text, or an error: a TypedTextError's typed values are left as typed) for the page."""
        typed = message.typed if isinstance(message, TypedTextError) else ()
        text = str(message)[: MAX_MESSAGE * 20]  # work on a bounded string whatever came in
        return shorten("".join(part if index % 2 else self._clean(part)
                               for index, part in enumerate(split_out(text, typed))))

    def _clean(self, text: str) -> str:
        for folder, label in self.pairs:
            text = text.replace(folder + "/", label + "/" if label else "").replace(folder, label or ".")
        # an API client names tasks as /train_start takes them: the command line's names
        return page_task_names(cut_paths(text), {} if PLAIN_TEXT_READER.get() else self.tasks)


def split_out(text: str, typed: Iterable[str]) -> list[str]:
    """`text` split around each typed value as `quoted` shows it: the values at the odd positions."""
    shown = sorted({quoted(value) for value in typed}, key=len, reverse=True)
    return re.split(f"({'|'.join(map(re.escape, shown))})", text) if shown else [text]


def cut_paths(text: str) -> str:
    """Every absolute path in `text` as its last part (`last_part`); an unquoted one with spaces in its folders
    whole (`path_end`)."""
    parts, pos = [], 0
    while match := ABSOLUTE_PATH.search(text, pos):
        end = path_end(text, match.end()) if match.group("bare") else match.end()
        parts += [text[pos:match.start()], last_part(text[match.start():end])]
        pos = end
    return "".join(parts) + text[pos:]


def path_end(text: str, end: int) -> int:
    """Where the unquoted path whose first word ends at `end` ends: past each next word that holds a '/' (more of
    its folders: '/srv/my data/run 1/x.png'), so the folders are cut with it; a last part with a space keeps its
    own words beside it ('my photo.png' reads the same); a ',' or ')' after a word ends it. Cut at its first space,
    that path showed 'my data/run 1/x.png'. Nothing is looked up on the server: a lookup told users which folders
    exist."""
    while (text[end - 1] not in AFTER_PATH and (word := NEXT_WORD.match(text, end))
           and "/" in word.group(1) and not word.group(1).startswith("/")):  # not the next path of a list
        end = word.end()
    return end


def page_task_names(text: str, tasks: Mapping[str, str]) -> str:
    """`text` with the tasks the library names as the command line does ('--task aligned', 'for the paired task')
    named as the Train form does ("the task 'Custom: A|B images'"); unchanged without `tasks`."""
    def labels(match: re.Match) -> str:
        names = re.split(r", | or ", match.group(1) or match.group(2))
        shown = [f"'{tasks.get(name.removesuffix(' (CycleGAN)'), name)}'" for name in names]
        listed = ", ".join(shown[:-1]) + f" or {shown[-1]}" if len(shown) > 1 else shown[0]
        return f"the task{'s' if len(shown) > 1 else ''} {listed}"

    return CLI_TASKS.sub(labels, text) if tasks else text


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
