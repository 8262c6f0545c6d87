"""CycleGAN on facades with the pairs broken, scored as in the CycleGAN paper (Zhu et al. 2017, table 1-2).

    python -m scripts.cyclegan_facades prepare --data data/facades --out data/facades_unpaired
    python -m pix2pix_core train --model cyclegan --task unpaired --data data/facades_unpaired \
        --out runs/cyclegan_facades --netG resnet_6blocks --load-size 143 --crop-size 128 ...
    python -m scripts.cyclegan_facades evaluate --data data/facades --size 128 \
        --model "CycleGAN=runs/cyclegan_facades" --model "pix2pix=runs/p2p_l2p,runs/p2p_p2l"

`prepare` writes trainA/ (the cleaned label maps) and trainB/ (the photos) of the facades train split
under shuffled, unrelated file names, so nothing can pair them; testA/ and testB/ the same from val.
`evaluate` scores each model on the val pairs, which do keep their pairs: labels -> photo with the
FCN-score (the bundled facade segmenter labels the generated photo, scored against the input label map),
photo -> labels with per-pixel / per-class accuracy and mIoU of the generated label map (each pixel given
its nearest class colour) against the true labels. A CycleGAN checkpoint (its run folder, a training checkpoint or
an export made with --direction both) translates both ways; pix2pix needs one model per direction
(`labels->photo,photo->labels`), and so does a CycleGAN exported one direction per file.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from pix2pix_core import palette
from pix2pix_core.checkpoint import generator_config, held_generators
from pix2pix_core.errors import Pix2PixError
from pix2pix_core.inference import Translator
from pix2pix_core.segment import N_CLASSES, Segmenter, confusion_matrix, scores_from_confusion

ROOT = Path(__file__).resolve().parent.parent


def split_pair(path: Path) -> tuple[Image.Image, Image.Image]:
    """A facades JPEG (photo | label map) -> (clean label map, photo)."""
    pair = Image.open(path).convert("RGB")
    half = pair.width // 2
    return palette.clean_label_map(pair.crop((half, 0, pair.width, pair.height))), pair.crop((0, 0, half, pair.height))


def prepare(data: Path, out: Path, seed: int = 0) -> None:
    """trainA/ testA/ = label maps, trainB/ testB/ = photos, each side under its own random names."""
    rng = random.Random(seed)
    for split, suffix in (("train", "train"), ("val", "test")):
        paths = sorted(p for p in (data / split).iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
        labels, photos = zip(*(split_pair(p) for p in paths))
        for side, pictures, ext in (("A", labels, "png"), ("B", photos, "jpg")):
            folder = out / f"{suffix}{side}"
            folder.mkdir(parents=True, exist_ok=True)
            order = list(range(len(pictures)))
            rng.shuffle(order)  # a different order per side: file names say nothing about the pairs
            for name, index in enumerate(order):
                pictures[index].save(folder / f"{side.lower()}{name:04d}.{ext}", quality=95)
        print(f"{split}: {len(paths)} label maps -> {out}/{suffix}A, photos -> {out}/{suffix}B")


def _square(image: Image.Image, size: int, label: bool) -> Image.Image:
    return image.resize((size, size), Image.NEAREST if label else Image.BICUBIC)


def evaluate(data: Path, models: dict[str, tuple[Translator, Translator]], segmenter: Segmenter, size: int,
             out: Path | None = None) -> dict[str, dict[str, float]]:
    """Scores per model: FCN-score of labels -> photo, accuracy / mIoU of photo -> labels."""
    paths = sorted(p for p in (data / "val").iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    # decoded and cleaned once for every model: scored at the dataset's 256 px, whatever size the models run at
    pairs = [split_pair(path) for path in paths]
    truths = [palette.clean_label_ids(label) for label, _ in pairs]
    results = {}
    rows = []
    for name, (to_photo, to_labels) in models.items():
        fcn = np.zeros((N_CLASSES, N_CLASSES), np.int64)
        parse = np.zeros((N_CLASSES, N_CLASSES), np.int64)
        row = []
        for index, ((label, photo), truth) in enumerate(zip(pairs, truths)):
            label_in, photo_in = _square(label, size, True), _square(photo, size, False)
            fake_photo = to_photo.translate(label_in, seed=index).resize(label.size, Image.BICUBIC)
            fcn += confusion_matrix(segmenter.predict_ids(fake_photo), truth)
            fake_label = to_labels.translate(photo_in, seed=index).resize(label.size, Image.NEAREST)
            parse += confusion_matrix(palette.nearest_class_ids(fake_label), truth)
            if index % max(len(pairs) // 4, 1) == 0 and len(row) < 4:
                row.append((label, fake_photo, photo, fake_label))
        rows.append((name, row))
        results[name] = {f"labels_to_photo_{k}": v for k, v in scores_from_confusion(fcn).items()}
        results[name].update({f"photo_to_labels_{k}": v for k, v in scores_from_confusion(parse).items()})
    results["real photos (segmenter)"] = {f"labels_to_photo_{k}": v for k, v in _segmenter_ceiling(
        pairs, truths, segmenter, size).items()}
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        _figure(rows).save(out, quality=85)
    return results


def _segmenter_ceiling(pairs, truths, segmenter, size) -> dict[str, float]:
    """The real photos through the same resize to `size` and back as the models' outputs, segmented."""
    matrix = np.zeros((N_CLASSES, N_CLASSES), np.int64)
    for (label, photo), truth in zip(pairs, truths):
        photo = _square(photo, size, False).resize(label.size, Image.BICUBIC)
        matrix += confusion_matrix(segmenter.predict_ids(photo), truth)
    return scores_from_confusion(matrix)


def _figure(rows, tile: int = 128) -> Image.Image:
    """Per model, 4 val pairs picked evenly: label map | generated photo | photo | generated label map."""
    from PIL import ImageDraw

    label_width = 110
    height = sum(len(r) for _, r in rows)
    figure = Image.new("RGB", (label_width + 4 * tile, tile * height), "white")
    draw = ImageDraw.Draw(figure)
    y = 0
    for name, row in rows:
        draw.text((6, y + tile // 2), name[:16], fill="black")
        for pictures in row:
            for column, picture in enumerate(pictures):
                figure.paste(picture.resize((tile, tile)), (label_width + column * tile, y))
            y += tile
    return figure


def _load(spec: str) -> tuple[Translator, Translator]:
    """`CHECKPOINT` (a CycleGAN: AtoB = labels -> photo) or `LABELS_TO_PHOTO,PHOTO_TO_LABELS` (two pix2pix)."""
    parts = spec.split(",")
    if len(parts) == 1:
        _refuse_one_direction(parts[0])
        return Translator.load(parts[0], direction="AtoB"), Translator.load(parts[0], direction="BtoA")
    return Translator.load(parts[0]), Translator.load(parts[1])


def _refuse_one_direction(path: str) -> None:
    """A file given alone that translates one way (a pix2pix model; a CycleGAN's ONNX or TorchScript export, or a
    safetensors one made with --direction AtoB or BtoA) scores one of the two columns: said in one line, not a
    traceback from loading the other direction."""
    both = ("one file per direction as LABELS_TO_PHOTO,PHOTO_TO_LABELS (two pix2pix models, say), or a CycleGAN's "
            "run folder or training checkpoint (or an export made with --direction both)")
    if Path(path).suffix.lower() in (".onnx", ".pt", ".ts"):
        raise Pix2PixError(f"{path} is an export of one generator, and evaluate scores both directions: give {both}")
    try:
        model, held = generator_config(path).model, held_generators(path)
    except Pix2PixError:
        return  # Translator.load names what is wrong with the file
    if model != "cyclegan":  # it was said to hold "the A -> B generator only" of a CycleGAN
        raise Pix2PixError(f"{path} is a pix2pix model: it translates one way, and evaluate scores both directions: "
                           "give it with a model for the other way as LABELS_TO_PHOTO,PHOTO_TO_LABELS")
    if len(held) == 1:
        raise Pix2PixError(f"{path} holds the CycleGAN's {'A -> B' if held == ['AtoB'] else 'B -> A'} generator "
                           f"only, and evaluate scores both directions: give {both}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("prepare", help="write the broken-pairs trainA/ trainB/ testA/ testB/")
    p.add_argument("--data", type=Path, required=True, help="the pix2pix facades folder (train/, val/)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--seed", type=int, default=0)
    p = commands.add_parser("evaluate", help="FCN-score and photo -> labels scores on the val pairs")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--model", action="append", required=True, metavar="NAME=SPEC",
                   help="NAME=CYCLEGAN_CHECKPOINT or NAME=LABELS_TO_PHOTO,PHOTO_TO_LABELS (repeatable)")
    p.add_argument("--size", type=int, default=128, help="the resolution every model is scored at")
    p.add_argument("--segmenter", default=str(ROOT / "checkpoints" / "facades_segmenter.safetensors"))
    p.add_argument("--figure", type=Path, default=None)
    p.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    if args.command == "prepare":
        prepare(args.data, args.out, args.seed)
        return
    try:
        models = {spec.split("=", 1)[0]: _load(spec.split("=", 1)[1]) for spec in args.model}
        results = evaluate(args.data, models, Segmenter.load(args.segmenter), args.size, args.figure)
    except Pix2PixError as exc:  # a missing or one-direction model, a missing segmenter: one line, not a traceback
        parser.exit(2, f"error: {exc}\n")
    print("| model | labels -> photo FCN pixel / class / mIoU | photo -> labels pixel / class / mIoU |")
    print("|---|---|---|")
    for name, scores in results.items():
        cells = [" / ".join(f"{scores[f'{side}_{k}']:.3f}" for k in ("pixel_acc", "class_acc", "miou"))
                 if f"{side}_miou" in scores else "" for side in ("labels_to_photo", "photo_to_labels")]
        print(f"| {name} | {cells[0]} | {cells[1]} |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
