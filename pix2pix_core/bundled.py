"""Where the bundled models are: `checkpoints/` of the source checkout this package runs from (a clone, or an
editable install of it). A wheel does not carry them (55 MB of research-only weights with cards of their own,
checkpoints/README.md), so an installed package looks in `checkpoints/` of the current folder; the app's
`--checkpoints` and `test --segmenter` name any other place.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

WHERE_TO_GET_THEM = "the bundled models are not in a wheel: they are in checkpoints/ of the source repository"


def source_checkout() -> Optional[Path]:
    """The repository holding this package when it runs from one (its pyproject.toml and checkpoints/ beside
    the package), else None: an installed package lives in site-packages, where neither is."""
    root = Path(__file__).resolve().parents[1]
    if (root / "pyproject.toml").is_file() and (root / "checkpoints").is_dir():
        return root
    return None


def bundled_checkpoints() -> Path:
    """The source checkout's checkpoints/ folder, else checkpoints/ in the current folder (looked up at each
    call: the current folder is the user's when the package is installed)."""
    return (source_checkout() or Path.cwd()) / "checkpoints"
