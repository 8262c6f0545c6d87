"""Compose a small results figure (rows of input | output | ground truth) from a `test` report.

    python scripts/results_figure.py reports/facades docs/results_facades.jpg --rows 4

Rows are picked evenly over the report (not cherry-picked) and tiles are shown at `--tile` pixels.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image

COLUMNS = ("input", "output", "ground_truth")


def compose(report: Path, rows: int, tile: int) -> Image.Image:
    images = report / "images"
    stems = sorted(p.name[: -len("_ground_truth.png")] for p in images.glob("*_ground_truth.png"))
    if not stems:
        raise SystemExit(f"no *_ground_truth.png in {images}: run `python -m pix2pix_core test` first")
    picked = [stems[round(i * (len(stems) - 1) / max(rows - 1, 1))] for i in range(min(rows, len(stems)))]
    figure = Image.new("RGB", (tile * len(COLUMNS), tile * len(picked)), "white")
    for row, stem in enumerate(picked):
        for column, kind in enumerate(COLUMNS):
            tile_image = Image.open(images / f"{stem}_{kind}.png").convert("RGB").resize((tile, tile), Image.LANCZOS)
            figure.paste(tile_image, (column * tile, row * tile))
    return figure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("report", type=Path, help="folder written by `python -m pix2pix_core test`")
    parser.add_argument("out", type=Path, help="output image (.jpg keeps it small)")
    parser.add_argument("--rows", type=int, default=4)
    parser.add_argument("--tile", type=int, default=160)
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    compose(args.report, args.rows, args.tile).save(args.out, quality=88)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
