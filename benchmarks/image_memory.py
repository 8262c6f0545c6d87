"""Peak memory of one colorize / facades translation by image shape: a wide or tall image must not cost
far more than a photo of the same pixel count. A script, not a test:

    python -m benchmarks.image_memory                       # the default shapes, bundled models
    python -m benchmarks.image_memory --shape 16384x732 --shape 4000x3000

Each (task, shape) runs in a fresh process: the model is loaded and the image written to a file first,
then `Translator.translate(path)` runs; the table shows the process's peak RSS before and during the
translation (`resource.getrusage` high-water marks) and the time it took.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHECKPOINTS = {"colorize": "checkpoints/food_colorize.safetensors",
               "facades": "checkpoints/facades_label2photo.safetensors"}
SHAPES = ("4000x3000", "16384x732", "732x16384")


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(task: str, shape: str, unchecked: bool) -> dict:
    """In this process: translate one image of `shape`; peak RSS before and after, in MB."""
    import numpy as np
    from PIL import Image

    from pix2pix_core import images
    from pix2pix_core.inference import Translator

    if unchecked:  # the limits of the code before the side bound, to measure what it allowed
        images.MAX_SIDE = 10 ** 9
    width, height = (int(v) for v in shape.split("x"))
    translator = Translator.load(CHECKPOINTS[task], device="cpu")
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "input.png"
        if task == "colorize":  # a photo-like image: smooth colour, so the PNG stays small and fast
            small = Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8))
        else:  # facade class colours (wall, window)
            small = Image.fromarray(np.where(rng.random((8, 8, 1)) < 0.5, [[[0, 0, 170]]], [[[0, 85, 255]]])
                                    .astype(np.uint8))
        small.resize((width, height), Image.NEAREST if task == "facades" else Image.BILINEAR).save(path)
        del small
        translator.translate(Image.new("RGB", (64, 64)))  # warm-up: the network's own buffers
        before = peak_mb()
        started = time.perf_counter()
        result = translator.translate(path)
        seconds = time.perf_counter() - started
        assert result.size == (width, height)
    return {"task": task, "shape": shape, "before_mb": before, "peak_mb": peak_mb(), "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", action="append", help="WIDTHxHEIGHT (repeatable)")
    parser.add_argument("--task", action="append", choices=sorted(CHECKPOINTS))
    parser.add_argument("--unchecked", action="store_true", help="lift the side bound (what the old code allowed)")
    parser.add_argument("--one", nargs=2, help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(*args.one, args.unchecked)))
        return
    print(f"{'task':9} {'shape':>12} {'before MB':>10} {'peak MB':>8} {'added MB':>9} {'s':>6}")
    for task in args.task or sorted(CHECKPOINTS):
        for shape in args.shape or SHAPES:
            command = [sys.executable, "-m", "benchmarks.image_memory", "--one", task, shape]
            done = subprocess.run(command + (["--unchecked"] if args.unchecked else []), capture_output=True,
                                  text=True)
            if done.returncode != 0:
                print(f"{task:9} {shape:>12} failed: {done.stderr.strip().splitlines()[-1:]}")
                continue
            row = json.loads(done.stdout.strip().splitlines()[-1])
            print(f"{task:9} {shape:>12} {row['before_mb']:10.0f} {row['peak_mb']:8.0f} "
                  f"{row['peak_mb'] - row['before_mb']:9.0f} {row['seconds']:6.2f}", flush=True)


if __name__ == "__main__":
    main()
