"""Which pictures a `test` report shows: the list its own index.html records, not whatever images/ holds.

A `test` cut short in a folder that held an earlier report leaves its new pictures in images/ beside the earlier
report's page, which still shows (and, with metrics.json, scores) its own pictures only. Whoever reads a report's
pictures (the report's next writer, scripts/results_figure.py, scripts/two_sample_seeds.py) reads this list.
Standard library only: the scripts import it without torch.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

PICTURE = re.compile(r"\d{4,}_[A-Za-z0-9_.-]+\.png")  # how evaluate.write_report names its pictures (_file_stem)
_LINK = re.compile(r'<img src="images/([^"/]+)"')


def shown_pictures(report: str | Path) -> Optional[list[str]]:
    """The file names in images/ that the report's index.html shows, in page order; None when there is no page
    to read (no report yet, or a hand-made folder of pictures)."""
    try:
        page = (Path(report) / "index.html").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    return list(dict.fromkeys(name for name in _LINK.findall(page) if PICTURE.fullmatch(name)))
