"""The colour two-sample accuracy of colorization `test` reports over many classifier seeds.

    python -m scripts.two_sample_seeds reports/food_old reports/food_new --seeds 20

`test` reports `colour_two_sample_acc` as the mean over two classifier seeds (cross-validation splits),
which moves by +-0.03 between seeds: too much to rank two models a few hundredths apart. This reads the
outputs and ground truths a report saved, computes their colour features once and repeats only the
classifier for `--seeds` seeds, printing the mean, standard deviation and range per report (each
colorized photo and its own real photo kept on one side of every split, as `test` does).
`--explain N` also lists, per report, the N colour statistics furthest apart between its colorized and
real photos (in pooled standard deviations): what gives the colorized photos away.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pix2pix_core.colour_realism import colour_features, colour_gaps
from pix2pix_core.realism import two_sample_accuracy
from pix2pix_core.report_pictures import shown_folder
from scripts.results_figure import report_stems


@dataclass
class SeedSpread:
    """Accuracies of one report over classifier seeds 0 .. n-1."""

    report: Path
    photos: int
    accuracies: list[float]
    gaps: list[tuple[str, float, float, float]]  # colour_realism.colour_gaps, largest first

    def row(self) -> str:
        values = np.asarray(self.accuracies)
        return (f"| {self.report} | {self.photos} | {values.mean():.3f} | {values.std():.3f} | "
                f"{values.min():.3f} - {values.max():.3f} |")


def report_pictures(report: Path) -> tuple[list[Path], list[Path]]:
    """A report's (outputs, ground truths), paired by the file stem `test` gave them."""
    stems, folder = report_stems(report), shown_folder(report)
    truths = [folder / f"{stem}_ground_truth.png" for stem in stems]
    outputs = [folder / f"{stem}_output.png" for stem in stems]
    if len(truths) < 2 or not all(p.exists() for p in outputs):
        raise SystemExit(f"{report}: needs at least 2 *_output.png / *_ground_truth.png pairs in images/ "
                         "(run `python -m pix2pix_core test` on a colorization model first)")
    return outputs, truths


def seed_spread(report: Path, seeds: int, explain: int = 0) -> SeedSpread:
    outputs, truths = report_pictures(report)
    generated = colour_features(outputs)  # paths: each photo is opened, read and closed in turn
    real = colour_features(truths)
    return SeedSpread(report, len(truths), [two_sample_accuracy(generated, real, seed=s, paired=True)
                                                for s in range(seeds)],
                      colour_gaps(generated, real, explain) if explain else [])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("reports", type=Path, nargs="+", help="folders written by `python -m pix2pix_core test`")
    parser.add_argument("--seeds", type=int, default=20, help="classifier seeds 0 .. N-1 (default 20)")
    parser.add_argument("--explain", type=int, default=0, metavar="N",
                        help="also list the N colour statistics furthest apart between colorized and real photos")
    args = parser.parse_args()
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")
    if args.explain < 0:
        parser.error("--explain must be 0 or more")
    for report in args.reports:  # every report readable before the table starts
        report_pictures(report)
    spreads = []
    print(f"| report | photos | mean of {args.seeds} seeds | std | range |")
    print("|---|---|---|---|---|")
    for report in args.reports:
        spreads.append(seed_spread(report, args.seeds, args.explain))
        print(spreads[-1].row(), flush=True)
    for spread in spreads if args.explain else []:
        print(f"\n{spread.report}: colorized vs real photos, largest gaps first\n")
        print("| colour statistic | gap (standard deviations) | real photos | colorized |")
        print("|---|---|---|---|")
        for what, effect, real, generated in spread.gaps:
            print(f"| {what} | {effect:+.2f} | {real:.4g} | {generated:.4g} |")


if __name__ == "__main__":
    main()
