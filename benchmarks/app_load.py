"""Load test for the app: N concurrent gradio_client clients x M requests each to /facade and /colorize.

Prints p50/p95 latency and the error count per endpoint as a table. A script, not a test:

    python app.py --port 7860 &            # the app under test, with its bundled models
    python -m benchmarks.app_load --url http://127.0.0.1:7860/ --clients 20 --requests 10

Each client alternates between the two endpoints with its own label maps and photos (256 px), so the
server sees a mixed queue like a class of users would produce.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

from pix2pix_core.palette import ids_to_image


def make_inputs(folder: Path, count: int) -> tuple[list[Path], list[Path]]:
    """Varied facade label maps and colour photos, so no two requests are the same."""
    rng = np.random.default_rng(0)
    label_maps, photos = [], []
    for i in range(count):
        ids = np.ones((256, 256), dtype=np.int64)
        ids[:16] = 0
        for _ in range(12):
            y, x = rng.integers(16, 220, 2)
            ids[y:y + rng.integers(10, 36), x:x + rng.integers(10, 36)] = rng.integers(2, 12)
        label_maps.append(folder / f"map_{i}.png")
        ids_to_image(ids).save(label_maps[-1])
        photo = rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)
        photos.append(folder / f"photo_{i}.jpg")
        Image.fromarray(photo).resize((256, 256), Image.BICUBIC).save(photos[-1], quality=90)
    return label_maps, photos


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:7860/")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=10, help="requests per client to each endpoint")
    args = parser.parse_args()

    from gradio_client import Client, handle_file

    latencies: dict[str, list[float]] = {"/facade": [], "/colorize": []}
    errors: dict[str, list[str]] = {"/facade": [], "/colorize": []}
    lock = threading.Lock()
    start_gate = threading.Barrier(args.clients)

    with tempfile.TemporaryDirectory() as tmp:
        label_maps, photos = make_inputs(Path(tmp), args.clients)

        def client_loop(index: int) -> None:
            client = Client(args.url, verbose=False)
            start_gate.wait()  # all clients start together: the worst case for the queue
            for i in range(args.requests):
                for endpoint, source in (("/facade", label_maps[index]), ("/colorize", photos[index])):
                    began = time.perf_counter()
                    try:
                        result = client.predict(handle_file(str(source)), "", i, api_name=endpoint)
                        if Image.open(result).size != (256, 256):
                            raise ValueError(f"wrong size {Image.open(result).size}")
                    except Exception as exc:  # count every failure, whatever its kind
                        with lock:
                            errors[endpoint].append(f"{type(exc).__name__}: {exc}")
                        continue
                    with lock:
                        latencies[endpoint].append(time.perf_counter() - began)

        began = time.perf_counter()
        threads = [threading.Thread(target=client_loop, args=(i,)) for i in range(args.clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - began

    print(f"{args.clients} clients x {args.requests} requests per endpoint, {wall:.1f} s wall, "
          f"{sum(map(len, latencies.values())) / wall:.1f} requests/s")
    print(f"{'endpoint':<10} {'ok':>5} {'errors':>7} {'p50 s':>7} {'p95 s':>7} {'max s':>7} {'mean s':>7}")
    for endpoint, values in latencies.items():
        print(f"{endpoint:<10} {len(values):>5} {len(errors[endpoint]):>7} {percentile(values, 50):>7.2f} "
              f"{percentile(values, 95):>7.2f} {max(values, default=float('nan')):>7.2f} "
              f"{statistics.fmean(values) if values else float('nan'):>7.2f}")
    for endpoint, messages in errors.items():
        for message in sorted(set(messages))[:3]:
            print(f"  {endpoint} error: {message}")
    sys.exit(1 if any(errors.values()) else 0)


if __name__ == "__main__":
    main()
