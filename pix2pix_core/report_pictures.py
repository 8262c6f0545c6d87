"""Which pictures a `test` report shows: the list its own index.html records, not whatever images/ holds.

A report's pictures lie in a folder of their own, images/report-XXXXXXXX/ (report_stage.py: a new report's never
take an earlier report's names, so replacing index.html switches from one to the other at once); an earlier
version's reports have theirs straight in images/. images/ may also hold pictures no page shows: a user's own, or
those an earlier version's `test` cut short left there. Whoever reads a report's pictures (the report's next writer,
scripts/results_figure.py, scripts/two_sample_seeds.py) reads this list, in shown_folder.
Standard library only: the scripts import it without torch.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

PICTURE = re.compile(r"\d{4,}_[A-Za-z0-9_.-]+\.png")  # how a report names its pictures (report_stage.picture_file)
PICTURE_FOLDER = re.compile(r"report-[a-z0-9_]{8}")  # a report's own folder in images/ (report_stage.ReportStage)
_LINK = re.compile(rf'<img src="images/(?:({PICTURE_FOLDER.pattern})/)?([^"/]+)"')


def _shown(report: str | Path) -> Optional[list[tuple[str, str]]]:
    """(folder in images/, "" for images/ itself; file name) of each picture the page shows; None without a page."""
    try:
        page = (Path(report) / "index.html").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    return [(folder, name) for folder, name in _LINK.findall(page) if PICTURE.fullmatch(name)]


def shown_pictures(report: str | Path) -> Optional[list[str]]:
    """The file names in shown_folder that the report's index.html shows, in page order; None when there is no page
    to read (no report yet, or a hand-made folder of pictures)."""
    shown = _shown(report)
    return None if shown is None else list(dict.fromkeys(name for folder, name in shown if folder == shown[0][0]))


def shown_folder(report: str | Path) -> Path:
    """The folder holding the pictures the report's index.html shows: images/report-XXXXXXXX/, or images/ itself
    (an earlier version's report, a page showing none, a hand-made folder of pictures)."""
    shown = _shown(report)
    return Path(report) / "images" / (shown[0][0] if shown else "")
