"""Label-map cleaning speed (`palette.clean_label_ids`: uploads, translate, test, training data); prints a table.

    python -m benchmarks.label_cleaning            # 256 px to 12 MP
    python -m benchmarks.label_cleaning --repeats 3

Each row is an example facade map from demo/examples/facades, resized (nearest) to the size and saved as a
quality-75 JPEG, so its edges carry the blends the cleaning exists for (a map of exact class colours, as the
app's canvas paints, skips the search). Alone on the development machine a 256 px map takes about 20 ms,
next to the generator's ~11 ms.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from pathlib import Path

from PIL import Image

from pix2pix_core.palette import clean_label_ids

EXAMPLES = Path(__file__).resolve().parents[1] / "demo" / "examples" / "facades"
SIZES = [(256, 256), (512, 512), (1024, 1024), (2048, 1536), (4000, 3000)]


def jpeg_label_map(size: tuple[int, int]) -> Image.Image:
    example = Image.open(sorted(EXAMPLES.glob("*.png"))[0]).convert("RGB").resize(size, Image.NEAREST)
    buffer = io.BytesIO()
    example.save(buffer, "JPEG", quality=75)  # PIL's default 4:2:0 chroma, as in the facades data
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per size (after one warm-up)")
    args = parser.parse_args()
    print(f"{'size':>11} {'MP':>5} | {'median ms':>9} {'ms / MP':>8}")
    for size in SIZES:
        image = jpeg_label_map(size)
        clean_label_ids(image)  # warm-up: builds the lookup tables once
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            clean_label_ids(image)
            times.append(time.perf_counter() - start)
        megapixels = size[0] * size[1] / 1e6
        median = statistics.median(times) * 1000
        print(f"{size[0]:>5}x{size[1]:<5} {megapixels:>5.2f} | {median:>9.1f} {median / megapixels:>8.1f}")


if __name__ == "__main__":
    main()
