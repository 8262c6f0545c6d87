"""Train a list of facades recipes at one budget and write the ablation table and figure.

    python -m scripts.ablate --data data/facades --out runs/ablation --epochs 15 --epochs-decay 15 --jobs 4
    python -m scripts.ablate --data data/facades --out runs/ablation \
        --rows paper_l1_cgan_70x70_patchgan,l1_gan_unconditional_d --seeds 0,1

Every row is a `python -m pix2pix_core train` run (the same base: U-Net 256 ngf 32, the paper's 70x70
PatchGAN ndf 64, batch 4, jitter 286 -> 256) with the row's flags on top, then `python -m pix2pix_core
test` on the val split (FCN-score, KID, two-sample accuracy; see README "Realism"). Runs go in
parallel (`--jobs`; each gets its own process and 1-2 CPU threads), finished rows are reused when the
script is run again, and `--deadline` stops rows still training at that many seconds (they are then
evaluated at their last checkpoint, and the table says which epoch that was).

Writes `--doc` (default OUT/ablation.md): one row per run with the FCN-score trio, KID, the two-sample
accuracy, epochs and minutes; and `--figure` (default OUT/ablation.jpg): the same val label maps for every
row. It refuses to replace a `--doc` it did not write (the project's docs/ablation.md grew hand-written
sections around the table this script first wrote), and row slugs it does not know (`--list`).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

from scripts.results_figure import pick_evenly

ROOT = Path(__file__).resolve().parent.parent
ALL_OPTIONS = ["--num-d", "2", "--lambda-feat", "10", "--gan-mode", "hinge", "--spectral-norm", "--ema-decay", "0.999",
               "--diff-augment", "translation,cutout"]


@dataclass(frozen=True)
class Row:
    name: str
    group: str
    flags: tuple[str, ...]


ROWS = [
    # the paper's own ablations (Isola et al. 2017, tables 1-3), at our budget
    Row("L1 only", "objective", ("--no-gan",)),
    Row("cGAN only", "objective", ("--lambda-l1", "0")),
    Row("L1 + GAN (unconditional D)", "objective", ("--unconditional-d",)),
    Row("paper: L1 + cGAN, 70x70 PatchGAN", "objective", ()),
    Row("PixelGAN 1x1", "discriminator", ("--netD", "pixel")),
    Row("PatchGAN 16x16", "discriminator", ("--netD", "n_layers", "--n-layers-d", "1")),
    Row("ImageGAN 286x286", "discriminator", ("--netD", "image")),
    Row("encoder-decoder (no skips)", "generator", ("--netG", "encoder_decoder_256")),
    # each new option alone, on top of the paper's recipe
    Row("+ multi-scale D (2) + feature matching", "option", ("--num-d", "2", "--lambda-feat", "10")),
    Row("+ spectral norm D", "option", ("--spectral-norm",)),
    Row("+ D at half the learning rate", "option", ("--d-lr-factor", "0.5")),
    # ways to keep the multi-scale D with feature matching from winning outright (it collapsed: docs/ablation.md)
    Row("+ multi-scale D + feature matching, slower D", "option",
        ("--num-d", "2", "--lambda-feat", "10", "--d-lr-factor", "0.5")),
    Row("+ multi-scale D + feature matching + spectral norm", "option",
        ("--num-d", "2", "--lambda-feat", "10", "--spectral-norm")),
    Row("+ hinge loss", "option", ("--gan-mode", "hinge")),
    Row("+ LSGAN loss", "option", ("--gan-mode", "lsgan")),
    Row("+ EMA of G (0.999)", "option", ("--ema-decay", "0.999")),
    Row("+ DiffAugment (translation, cutout)", "option", ("--diff-augment", "translation,cutout")),
    Row("+ label-edge warps (3 px)", "option", ("--label-warp", "3")),
    # combined
    Row("all new options but warps", "combined", tuple(ALL_OPTIONS)),
    Row("all new options, lambda L1 25", "combined", (*ALL_OPTIONS, "--lambda-l1", "25")),
    Row("all new options + label-edge warps", "combined", (*ALL_OPTIONS, "--label-warp", "3")),
]
# the rows that decide the recipe get every seed of --seeds
SEEDED = {"paper: L1 + cGAN, 70x70 PatchGAN", "L1 + GAN (unconditional D)", "all new options but warps"}
BASE = ("--task", "facades", "--recipe", "paper", "--ngf", "32", "--ndf", "64", "--batch-size", "4")


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")[:48]


def run_row(row: Row, seed: int, args) -> dict:
    """Train and test one row (skipped when its metrics exist); returns its record."""
    folder = args.out / f"{slug(row.name)}_s{seed}"
    record_path = folder / "record.json"
    if record_path.exists():
        return json.loads(record_path.read_text())
    python = [sys.executable, "-m", "pix2pix_core"]
    train = [*python, "train", *BASE, "--data", str(args.data), "--out", str(folder), "--seed", str(seed),
             "--epochs", str(args.epochs), "--epochs-decay", str(args.epochs_decay), "--device", args.device,
             "--threads", str(args.threads), "--sample-every", "0", "--save-every", "0",
             "--checkpoint-every-steps", "200", "--log-every", "10", *row.flags]
    if (folder / "checkpoints" / "latest.safetensors").exists():
        train.append("--resume")
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "log.txt", "a") as log:  # closed after the row (a handle per row was kept open)
        started = time.perf_counter()
        process = subprocess.Popen(train, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
                                   env={**os.environ, "PYTHONUNBUFFERED": "1"})
        while process.poll() is None:
            if args.deadline and time.time() > args.deadline:
                process.send_signal(signal.SIGINT)  # the trainer keeps its last checkpoint
                process.wait()
                break
            time.sleep(1)
        minutes = (time.perf_counter() - started) / 60
        checkpoint = folder / "checkpoints" / "latest.safetensors"
        record = {"name": row.name, "group": row.group, "seed": seed, "flags": list(row.flags), "minutes": minutes,
                  "complete": process.returncode == 0,
                  "collapsed": ended_in_collapse(folder / "log.txt", process.returncode)}
        if not checkpoint.exists():
            record["error"] = f"no checkpoint (exit {process.returncode}); see {folder / 'log.txt'}"
            return record
        test = [*python, "test", "--checkpoint", str(checkpoint), "--data", str(args.data), "--out",
                str(folder / "test"), "--device", args.device, "--threads", str(args.threads)]
        subprocess.run(test, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, check=False)
        metrics_path = folder / "test" / "metrics.json"
        if metrics_path.exists():
            record["metrics"] = json.loads(metrics_path.read_text())
        record["epochs_done"] = _epochs_done(checkpoint, args.n_train)
        record["checkpoint"] = str(checkpoint)
        if record["complete"] or record["collapsed"]:  # a collapse is a result too: rerunning would repeat it
            record_path.write_text(json.dumps(record, indent=2))
        return record


def ended_in_collapse(log: Path, returncode: int) -> bool:
    """Whether the trainer stopped the run because its GAN collapsed (pix2pix_core/collapse.py)."""
    if returncode != 1 or not log.exists():
        return False
    with open(log, "rb") as handle:
        handle.seek(max(0, log.stat().st_size - 4000))
        return b"error: the GAN collapsed" in handle.read()


def _epochs_done(checkpoint: Path, n_train: int) -> float:
    """Epochs trained, from the checkpoint's header (fractional when stopped mid-epoch)."""
    from pix2pix_core.checkpoint import read_checkpoint
    from pix2pix_core.config import TrainConfig

    _, metadata = read_checkpoint(checkpoint)
    state = json.loads(metadata.get("state", "{}"))
    config = TrainConfig.from_json(metadata["config"])
    per_epoch = -(-n_train // config.batch_size)
    return round(state.get("epoch", 0) + state.get("batch", 0) / per_epoch, 1)


def _fmt(metrics: dict, key: str, digits: int = 3) -> str:
    value = metrics.get(key)
    return f"{value:.{digits}f}" if isinstance(value, (int, float)) else "n/a"


def write_table(records: list[dict], args) -> str:
    """The markdown table, rows in the order of ROWS (seeds together)."""
    lines = ["| run | seed | FCN pixel / class / mIoU | KID x1000 | two-sample acc. | epochs | minutes |",
             "|---|---|---|---|---|---|---|"]
    floor = {}
    for record in records:
        metrics = record.get("metrics", {})
        if not metrics:
            lines.append(f"| {record['name']} | {record['seed']} | {record.get('error', 'no metrics')} | | | | |")
            continue
        floor = floor or metrics
        fcn = " / ".join(_fmt(metrics, k) for k in ("fcn_pixel_acc", "fcn_class_acc", "fcn_miou"))
        lines.append(f"| {record['name']} | {record['seed']} | {fcn} | {_fmt(metrics, 'kid_x1000', 1)} | "
                     f"{_fmt(metrics, 'two_sample_acc', 2)} | {record.get('epochs_done', '?')}"
                     f"{' (collapsed: stopped)' if record.get('collapsed') else ''} | {record['minutes']:.1f} |")
    if floor:
        real = " / ".join(_fmt(floor, k) for k in ("fcn_pixel_acc_real", "fcn_class_acc_real", "fcn_miou_real"))
        lines.append(f"| real val photos (ceiling / floor) | | {real} | {_fmt(floor, 'kid_x1000_floor', 1)} | "
                     f"{_fmt(floor, 'two_sample_acc_floor', 2)} | | |")
    return "\n".join(lines)


def compose_figure(records: list[dict], args, examples: int = 5, tile: int = 128) -> Image.Image:
    """The same val label maps (picked evenly) through every row's model, one row per run."""
    from pix2pix_core.data import load_items
    from pix2pix_core.config import TrainConfig
    from pix2pix_core.inference import Translator

    items = load_items(TrainConfig(task="facades", data=str(args.data)), "val", train=False)
    picked = pick_evenly(items, examples)
    to_pil = lambda t: Image.fromarray(t.permute(1, 2, 0).numpy(), "RGB")  # noqa: E731
    rows = [("label map", [to_pil(i.source) for i in picked]), ("real photo", [to_pil(i.target) for i in picked])]
    for record in records:
        if record.get("checkpoint") and Path(record["checkpoint"]).exists() and record["seed"] == 0:
            translator = Translator.load(record["checkpoint"], device=args.device)
            rows.append((record["name"], [translator.translate(to_pil(i.source)) for i in picked]))
    label_width = 230
    figure = Image.new("RGB", (label_width + tile * len(picked), tile * len(rows)), "white")
    draw = ImageDraw.Draw(figure)
    for r, (name, pictures) in enumerate(rows):
        draw.text((6, r * tile + tile // 2 - 6), name[:36], fill="black")
        for c, picture in enumerate(pictures):
            figure.paste(picture.resize((tile, tile), Image.LANCZOS), (label_width + c * tile, r * tile))
    return figure


DOC_MARK = "Written by `python -m scripts.ablate`"  # in every doc this script writes, and only there


def parse_args(argv=None) -> argparse.Namespace:
    """The command line, checked before any training starts: unknown rows and a doc written by hand are errors."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, help="facades folder with train/ and val/ (needed but with --list)")
    parser.add_argument("--out", type=Path, default=Path("runs/ablation"))
    parser.add_argument("--epochs", type=int, default=15, help="epochs at constant LR per run")
    parser.add_argument("--epochs-decay", type=int, default=15, help="epochs of linear decay per run")
    parser.add_argument("--rows", help="comma list of row slugs to run (default all); see --list")
    parser.add_argument("--seeds", default="0,1", help="seeds for the rows that decide the recipe")
    parser.add_argument("--jobs", type=int, default=1, help="runs in parallel")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads per run")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--deadline", type=float, default=0, help="stop training rows after this many seconds")
    parser.add_argument("--doc", type=Path, default=None, help="markdown table to write (default OUT/ablation.md)")
    parser.add_argument("--figure", type=Path, default=None, help="figure to write (default OUT/ablation.jpg)")
    parser.add_argument("--budget-note", default="", help="extra sentence for the doc (hardware, concurrency)")
    parser.add_argument("--list", action="store_true", help="print the row slugs and exit")
    args = parser.parse_args(argv)
    if args.data is None and not args.list:
        parser.error("the following argument is required: --data")
    # absolute: the runs are subprocesses in the repository root, this script may run from anywhere
    args.data, args.out = args.data and args.data.resolve(), args.out.resolve()
    args.doc = args.doc or args.out / "ablation.md"
    args.figure = args.figure or args.out / "ablation.jpg"
    unknown = set(args.rows.split(",")) - {slug(r.name) for r in ROWS} if args.rows else set()
    if unknown and not args.list:
        parser.error(f"unknown rows: {', '.join(sorted(unknown))} (see --list)")
    if args.doc.exists() and not args.list and DOC_MARK not in args.doc.read_text(encoding="utf-8", errors="replace"):
        parser.error(f"{args.doc} was not written by this script (edited by hand?); pass another --doc")
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.list:
        print("\n".join(f"{slug(r.name):48}  {' '.join(r.flags)}" for r in ROWS))
        return
    args.deadline = time.time() + args.deadline if args.deadline else 0
    wanted = set(args.rows.split(",")) if args.rows else None
    seeds = [int(s) for s in args.seeds.split(",")]
    jobs = [(row, seed) for row in ROWS if wanted is None or slug(row.name) in wanted
            for seed in (seeds if row.name in SEEDED else seeds[:1])]
    args.n_train = sum(1 for p in (args.data / "train").iterdir() if p.is_file())
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        records = list(pool.map(lambda job: run_row(*job, args), jobs))
    (args.out / "records.json").write_text(json.dumps(records, indent=2))
    table = write_table(records, args)
    args.figure.parent.mkdir(parents=True, exist_ok=True)
    compose_figure(records, args).save(args.figure, quality=85)
    budget = (f"Budget per run: {args.epochs} + {args.epochs_decay} epochs (constant + linear decay) on the 400 "
              f"facades train pairs at 256 px, batch 4, U-Net ngf 32, PatchGAN ndf 64; {args.jobs} runs in parallel, "
              f"{(time.perf_counter() - started) / 60:.1f} min in all. {args.budget_note}")
    doc = (f"# Facades ablation\n\n{DOC_MARK} (scripts/ablate.py). {budget}\n\n"
           "Metrics on the 26 val pairs (`python -m pix2pix_core test`): the paper's FCN-score (higher is better), "
           "KID x1000 in the facade segmenter's features and the two-sample classifier accuracy (lower is better; "
           "0.5 = indistinguishable). The last row is real val photos: the FCN ceiling, and the real-vs-real floor "
           "(train photos vs val photos). With 26 images, see README \"Realism\" for the noise.\n\n"
           f"{table}\n\n![ablation figure]({os.path.relpath(args.figure, args.doc.parent)})\n")
    args.doc.parent.mkdir(parents=True, exist_ok=True)
    args.doc.write_text(doc)
    print(table)
    print(f"wrote {args.doc} and {args.figure}")


if __name__ == "__main__":
    main()
