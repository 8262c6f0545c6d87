"""Which pictures a `test` report shows: the list its own index.html records, not whatever images/ holds.

images/ may hold pictures the page does not show: a user's own, or those an earlier version's `test` cut short left
there (a `test` now stages its pictures until its page is written: report_stage.py). Whoever reads a report's
pictures (the report's next writer, scripts/results_figure.py, scripts/two_sample_seeds.py) reads this list.
Standard library only: the scripts import it without torch.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

PICTURE = re.compile(r"\d{4,}_[A-Za-z0-9_.-]+\.png")  # how a report names its pictures (report_stage.picture_file)
_LINK = re.compile(r'<img src="images/([^"/]+)"')


def shown_pictures(report: str | Path) -> Optional[list[str]]:
    """The file names in images/ that the report's index.html shows, in page order; None when there is no page
    to read (no report yet, or a hand-made folder of pictures)."""
    try:
        page = (Path(report) / "index.html").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    return list(dict.fromkeys(name for name in _LINK.findall(page) if PICTURE.fullmatch(name)))
