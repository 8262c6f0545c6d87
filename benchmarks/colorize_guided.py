"""Bilinear vs lightness-guided upsampling of the colorizer's ab, measured at the photos' full size.

    python -m benchmarks.colorize_guided                       # food val, 200 photos, default variants
    python -m benchmarks.colorize_guided --limit 50 --variants bilinear 2:1e-3
    python -m benchmarks.colorize_guided --limit 100 --size 1024 --noise 3   # a 1 MP photo with sensor noise

`test` evaluates colorization at the network's size (each photo resized to crop_size first), where
the upsampling does nothing; here each val photo is colorized at its stored size (food: 286 px) from
one network run, the ab joined to the full-resolution lightness by each variant (`bilinear`, today's
path, or `RADIUS:EPS`, `color.guided_coefficients`), and compared with the real photo: PSNR and
colourfulness (as `test`), the colour-detail ratio and the real-vs-colorized colour two-sample
accuracy (pix2pix_core/colour_realism.py) with its real-vs-real floor (as many train photos).

`--size` above the stored size upsamples the photos, which leaves their lightness without detail the
network did not see; `--noise SIGMA` adds seeded Gaussian noise (SIGMA levels of 255, the same on R, G
and B: lightness grain) to each photo first, as a phone photo has. The guide's eps decides how much of
that grain turns into colour speckle.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from pix2pix_core.color import recolor_uint8
from pix2pix_core.colour_realism import colour_realism_metrics
from pix2pix_core.data import seeded_sample
from pix2pix_core.evaluate import as_unit, colorfulness, image_scores
from pix2pix_core.images import load_folder_images, open_image, resize_photo
from pix2pix_core.inference import Translator

ROOT = Path(__file__).resolve().parents[1]


def parse_variant(text: str) -> tuple[str, dict]:
    if text == "bilinear":
        return text, {}
    try:
        radius, eps = int(text.split(":")[0]), float(text.split(":")[1])
    except (IndexError, ValueError):
        raise argparse.ArgumentTypeError(f"a variant is bilinear or RADIUS:EPS (e.g. 1:1e-4), not {text!r}") from None
    return f"guided r={radius} eps={eps:g}", {"radius": radius, "eps": eps}


def default_data() -> str:
    """data/food as README "Get the data" puts it; this machine's shared copy when that is missing."""
    local, shared = ROOT / "data" / "food", ROOT.parent / "shared" / "data" / "food"
    return str(local if local.is_dir() or not shared.is_dir() else shared)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=str(ROOT / "checkpoints" / "food_colorize.safetensors"))
    parser.add_argument("--data", default=default_data(), help="food photos with a val/ split (default: data/food)")
    parser.add_argument("--split", default="val")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--size", type=int, default=None,
                        help="resize each photo to SIZE x SIZE first (images.resize_photo, as `test --size`)")
    parser.add_argument("--noise", type=float, default=0.0, metavar="SIGMA",
                        help="add Gaussian lightness noise of SIGMA levels (0-255) to each photo first (default 0)")
    parser.add_argument("--variants", nargs="+", type=parse_variant,
                        default=[parse_variant(v) for v in ("bilinear", "1:1e-5", "1:1e-4", "1:1e-3", "2:1e-4")])
    args = parser.parse_args()

    translator = Translator.load(args.checkpoint, device="cpu")
    paths = load_folder_images(Path(args.data) / args.split)[: args.limit]
    if len(paths) < 2:  # the colour two-sample test needs two photos a side
        raise SystemExit(f"error: {len(paths)} photo(s) in {Path(args.data) / args.split}; the benchmark needs at "
                         f"least 2 (--limit 2 or more)")
    if args.noise < 0:
        parser.error("--noise must be 0 or more")
    variants = args.variants
    noise = np.random.default_rng(0)
    outputs: dict[str, list[Image.Image]] = {name: [] for name, _ in variants}
    reals, psnr, colourful = [], {name: [] for name, _ in variants}, {name: [] for name, _ in variants}
    gray_psnr, real_colourful = [], []
    for path in paths:
        picture = open_image(path).convert("RGB")
        if args.size:
            picture = resize_photo(picture, (args.size, args.size))
        if args.noise:
            grain = noise.normal(0.0, args.noise, (picture.height, picture.width, 1))
            picture = Image.fromarray(np.clip(np.asarray(picture, np.float32) + grain, 0, 255).round().astype(np.uint8))
        rgb = np.asarray(picture, np.uint8)
        lightness_small = translator.colorize_input(picture)
        ab = translator.run_network(lightness_small, seed=0)[0].numpy()
        truth = as_unit(picture)
        reals.append(picture)
        real_colourful.append(colorfulness(truth))
        gray_psnr.append(image_scores(as_unit(Image.fromarray(recolor_uint8(rgb, np.zeros_like(ab)))), truth)["psnr"])
        for name, options in variants:
            guide = lightness_small[0, 0].numpy() if options else None
            output = Image.fromarray(recolor_uint8(rgb, ab, lightness_small=guide, **options), "RGB")
            outputs[name].append(output)
            psnr[name].append(image_scores(as_unit(output), truth)["psnr"])
            colourful[name].append(colorfulness(as_unit(output)))
    # the floor's train photos: a seeded random sample, as `test` takes them (the first N in name order
    # are a few food classes only: Food-101 names start with the class, which made the floor 0.63, not 0.52)
    train_paths = seeded_sample(load_folder_images(Path(args.data) / "train"), len(reals), seed=0)
    others = [open_image(path).convert("RGB") for path in train_paths]
    if args.size:
        others = [resize_photo(p, (args.size, args.size)) for p in others]
    real_mean = float(np.mean(real_colourful))
    size = f"{reals[0].width}x{reals[0].height}"
    where = f"resized to {size}" if args.size else f"at their stored size (first: {size})"
    noise = f", lightness noise sigma {args.noise:g}" if args.noise else ""
    print(f"{len(reals)} {args.split} photos {where}{noise}; gray input PSNR "
          f"{np.mean(gray_psnr):.2f} dB; real colourfulness {real_mean:.1f}")
    print("| upsampling of ab | PSNR (dB) | colourfulness / real | colour detail / real | "
          "colour two-sample acc (floor) |")
    print("|---|---|---|---|---|")
    for name, _ in variants:
        metrics = colour_realism_metrics(outputs[name], reals, others)
        print(f"| {name} | {np.mean(psnr[name]):.2f} | {np.mean(colourful[name]) / real_mean:.3f} | "
              f"{metrics['colour_detail_ratio']:.3f} | {metrics['colour_two_sample_acc']:.3f} "
              f"({metrics['colour_two_sample_acc_floor']:.3f}) |", flush=True)


if __name__ == "__main__":
    main()
