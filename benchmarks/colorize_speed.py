"""Full-resolution colorize time against JPEG decode + encode of the same photo; prints a table.

    python -m benchmarks.colorize_speed                  # 1, 4 and 12 MP, 5 repeats
    python -m benchmarks.colorize_speed --repeats 3 --megapixels 12

The photos are synthetic but photo-like: the bundled food examples (demo/examples/food) upscaled to
1, 4 and 12 megapixels (4:3) with a little sensor-like grain, stored as quality-92 JPEGs in memory.
For each size, each repeat times, one after the other so that a busy machine hits all of them alike:
decoding the JPEG to RGB, encoding that RGB back to a quality-92 JPEG, `Translator.colorize` (the fast
path) and `Translator.colorize_reference` (the original kornia path) with the bundled model. The table
gives medians, the ratio colorize / (decode + encode) for both paths, and the mean absolute difference
between the two paths' outputs in uint8 levels. The fast path guides ab by the lightness by default
(`Translator.chroma_guide`), which changes the colours on purpose (|new-old| about 2 levels); the
`bilinear` columns time the same fast path with plain bilinear ab in the same repeats, and `--bilinear`
makes that the measured path (|new-old| then checks the fast path alone: well under 0.1 level).
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from pix2pix_core.inference import Translator

ROOT = Path(__file__).resolve().parents[1]


def photo_jpeg(source: Path, megapixels: float, seed: int = 0) -> bytes:
    """A 4:3 photo-like JPEG of about `megapixels`, upscaled from `source` with mild grain."""
    width = int(round((megapixels * 1e6 * 4 / 3) ** 0.5))
    height = int(round(width * 3 / 4))
    picture = Image.open(source).convert("RGB").resize((width, height), Image.BICUBIC)
    rng = np.random.default_rng(seed)
    grain = rng.normal(0, 3, (height, width, 1)).astype(np.float32)
    pixels = np.clip(np.asarray(picture, np.float32) + grain, 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buffer, format="JPEG", quality=92)
    return buffer.getvalue()


def seconds(fn) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def decode(data: bytes) -> Image.Image:
    picture = Image.open(io.BytesIO(data))
    picture.load()
    return picture.convert("RGB") if picture.mode != "RGB" else picture


def encode(picture: Image.Image) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=92)
    return buffer.getvalue()


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{model}, {os.cpu_count()} CPUs, torch {torch.__version__} with {torch.get_num_threads()} threads, "
            f"load average {load:.1f} at start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=str(ROOT / "checkpoints" / "food_colorize.safetensors"))
    parser.add_argument("--megapixels", type=float, nargs="+", default=[1, 4, 12])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-reference", action="store_true", help="skip the original (slow) path")
    parser.add_argument("--bilinear", action="store_true",
                        help="time the fast path with plain bilinear ab (chroma_guide=None) instead of the "
                             "default lightness-guided upsampling; |new-old| then measures the fast path alone")
    args = parser.parse_args()

    print(machine())
    translator = Translator.load(args.checkpoint, device="cpu",
                                 **({"chroma_guide": None} if args.bilinear else {}))
    print(f"ab upsampling: {'bilinear' if translator.chroma_guide is None else f'guided {translator.chroma_guide}'}")
    sources = sorted((ROOT / "demo" / "examples" / "food").glob("*.jpg"))
    rows = []
    for index, megapixels in enumerate(args.megapixels):
        data = photo_jpeg(sources[index % len(sources)], megapixels, seed=index)
        picture = decode(data)
        translator.colorize(picture)  # warm-up: tables, network, allocator
        times: dict[str, list[float]] = {"decode": [], "encode": [], "new": [], "old": [], "bilinear": []}
        difference = float("nan")
        for _ in range(args.repeats):
            took, picture = seconds(lambda: decode(data))
            times["decode"].append(took)
            times["encode"].append(seconds(lambda: encode(picture))[0])
            took, new = seconds(lambda: translator.colorize(picture, seed=0))
            times["new"].append(took)
            if translator.chroma_guide is not None:  # the same fast path with plain bilinear ab, same load
                guide, translator.chroma_guide = translator.chroma_guide, None
                times["bilinear"].append(seconds(lambda: translator.colorize(picture, seed=0))[0])
                translator.chroma_guide = guide
            if not args.no_reference:
                took, old = seconds(lambda: translator.colorize_reference(picture, seed=0))
                times["old"].append(took)
                difference = float(np.abs(np.asarray(new, np.int16) - np.asarray(old, np.int16)).mean())
        median = {key: statistics.median(value) if value else float("nan") for key, value in times.items()}
        codec = median["decode"] + median["encode"]
        rows.append((f"{picture.width}x{picture.height}", picture.width * picture.height / 1e6, median, codec,
                     difference))

    print(f"\nmedians of {args.repeats} repeats; codec = JPEG decode + encode (quality 92) of the same photo")
    print(f"{'size':>10} {'MP':>5} {'decode':>8} {'encode':>8} {'codec':>8} {'old':>8} {'new':>8} "
          f"{'old/codec':>10} {'new/codec':>10} {'|new-old|':>10} {'bilinear':>9} {'bil/codec':>10}")
    for size, mp, median, codec, difference in rows:
        print(f"{size:>10} {mp:5.1f} {median['decode'] * 1e3:6.0f}ms {median['encode'] * 1e3:6.0f}ms "
              f"{codec * 1e3:6.0f}ms {median['old'] * 1e3:6.0f}ms {median['new'] * 1e3:6.0f}ms "
              f"{median['old'] / codec:9.1f}x {median['new'] / codec:9.1f}x {difference:10.4f} "
              f"{median['bilinear'] * 1e3:7.0f}ms {median['bilinear'] / codec:9.1f}x")


if __name__ == "__main__":
    main()
