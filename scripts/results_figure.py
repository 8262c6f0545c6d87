"""Compose a results figure (rows of input | output | ground truth) from one or more `test` reports.

    python scripts/results_figure.py reports/facades docs/results_facades.jpg --rows 4
    python scripts/results_figure.py reports/shipped reports/new docs/compare.jpg --rows 5 --labels shipped new

With several reports (the same val split through different models), each row shows the input once,
then every report's output in the order given, then the ground truth: models compared on the same
inputs. Rows are picked evenly over the first report (not cherry-picked); `--labels` adds a caption
row. Tiles are shown at `--tile` pixels.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Optional, Sequence, TypeVar

from PIL import Image, ImageDraw

from pix2pix_core.report_pictures import shown_folder, shown_pictures

GROUND_TRUTH = "_ground_truth.png"
CAPTION_HEIGHT = 18
T = TypeVar("T")


def report_stems(report: Path) -> list[str]:
    """The image stems of a report in the order `test` wrote them: those its index.html shows (in shown_folder:
    images/ may also hold other pictures, a user's own or those an earlier version's `test` cut short left); a
    folder without a page, its images/ sorted."""
    shown = shown_pictures(report)
    names = shown if shown is not None else sorted(p.name for p in (report / "images").glob(f"*{GROUND_TRUTH}"))
    stems = [name[: -len(GROUND_TRUTH)] for name in names if name.endswith(GROUND_TRUTH)]
    if not stems:
        where = report / "index.html" if shown is not None else report / "images"
        raise SystemExit(f"no *{GROUND_TRUTH} in {where}: run `python -m pix2pix_core test` first")
    return stems


def pick_evenly(items: Sequence[T], rows: int) -> list[T]:
    """`rows` items spread over the whole list, first and last included (all of them when rows >= len)."""
    rows = min(rows, len(items))
    return [items[round(i * (len(items) - 1) / max(rows - 1, 1))] for i in range(rows)]


def compose(reports: Sequence[Path], rows: int, tile: int, labels: Optional[Sequence[str]] = None) -> Image.Image:
    """input | each report's output | ground truth, for `rows` inputs that every report holds."""
    reports = [Path(r) for r in reports]
    picked = pick_evenly(report_stems(reports[0]), rows)
    for report in reports[1:]:
        missing = sorted(set(picked) - set(report_stems(report)))
        if missing:
            raise SystemExit(f"{report} has no {missing[0]}: compare reports of the same split")
    folders = [shown_folder(report) for report in reports]  # each page read once, not for every picture
    columns = [(folders[0], "input")] + [(folder, "output") for folder in folders] + [(folders[0], "ground_truth")]
    if labels is not None and len(labels) != len(reports):
        raise SystemExit(f"--labels needs one label per report ({len(reports)}), got {len(labels)}")
    top = CAPTION_HEIGHT if labels else 0
    figure = Image.new("RGB", (tile * len(columns), top + tile * len(picked)), "white")
    if labels:
        draw = ImageDraw.Draw(figure)
        for column, caption in enumerate(["input", *labels, "real"]):
            draw.text((column * tile + 4, 3), caption, fill="black")
    for row, stem in enumerate(picked):
        for column, (folder, kind) in enumerate(columns):
            path = folder / f"{stem}_{kind}.png"
            tile_image = Image.open(path).convert("RGB").resize((tile, tile), Image.LANCZOS)
            figure.paste(tile_image, (column * tile, top + row * tile))
    return figure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("reports", type=Path, nargs="+", help="folders written by `python -m pix2pix_core test`")
    parser.add_argument("out", type=Path, help="output image (.jpg keeps it small)")
    parser.add_argument("--rows", type=int, default=4)
    parser.add_argument("--tile", type=int, default=160)
    parser.add_argument("--labels", nargs="+", help="one caption per report, shown above its column")
    args = parser.parse_args()
    for option in ("rows", "tile"):  # 0 ended in PIL's "cannot write empty image" traceback
        if getattr(args, option) < 1:
            parser.error(f"--{option} must be at least 1")
    if args.out.suffix.lower() not in Image.registered_extensions():  # PIL's traceback, after the work
        parser.error(f"{args.out}: not a picture file name (give .jpg or .png)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    compose(args.reports, args.rows, args.tile, args.labels).save(args.out, quality=88)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
