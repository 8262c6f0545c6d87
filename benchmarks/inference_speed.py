"""Per-image inference latency of the bundled models: PyTorch (the Translator's CPU path) vs onnxruntime.

    python -m benchmarks.inference_speed                 # from the repository root; both bundled models
    python -m benchmarks.inference_speed --repeats 50 --threads 2

For each model: export it to ONNX (fp32, dropout off, batch norm as the Translator uses it) in a temporary
folder, then time, interleaved round by round so that load from other processes hits every backend alike:
  * torch bf16: `Translator.run_network` as the app and CLI run it on a CPU (bf16 weights, channels_last);
  * torch fp32: the same network in fp32 (the reference the ONNX file is checked against);
  * onnx fp32:  the exported file in onnxruntime (CPUExecutionProvider).
Each is warmed up first; the table gives the median (and the minimum and 90th percentile) of `--repeats` calls on one
image at the model's size, network only, and the same for `Translator.translate` of a 512x384 picture
(pre/post-processing included). Dropout is off on every backend (the exported model has none).
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from pix2pix_core.checkpoint import load_generator
from pix2pix_core.export_formats import example_input, export_model
from pix2pix_core.inference import Translator

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("checkpoints/facades_label2photo.safetensors", "checkpoints/food_colorize.safetensors")


def percentiles(values: list[float]) -> tuple[float, float, float]:
    """Median, minimum and 90th percentile: on a shared machine the minimum is the closest to an idle one."""
    ordered = sorted(values)
    return statistics.median(ordered), ordered[0], ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]


def picture_for(task: str) -> Image.Image:
    rng = np.random.default_rng(0)
    if task == "facades":
        from pix2pix_core.palette import ids_to_image

        ids = np.ones((384, 512), np.int64)
        ids[64::64, :] = 2
        return ids_to_image(ids)
    return Image.fromarray(rng.integers(0, 255, (384, 512, 3), dtype=np.uint8))


def bench_model(path: Path, repeats: int, warmup: int, folder: Path) -> list[dict]:
    generator, config, _ = load_generator(path)
    onnx_path = export_model(path, folder / f"{path.stem}.onnx", "onnx")
    backends = {
        "torch bf16 (Translator)": Translator.load(path, device="cpu", dropout=False, backend="torch"),
        "torch fp32": Translator(generator, dataclasses.replace(config, precision="fp32"), "cpu", dropout=False),
        "onnxruntime fp32": Translator.load(onnx_path, backend="onnx"),
    }
    x = example_input(config, 1)
    picture = picture_for(config.task)
    calls = {name: (lambda t=t: t.run_network(x, seed=0), lambda t=t: t.translate(picture, seed=0))
             for name, t in backends.items()}
    reference = backends["torch fp32"].run_network(x)
    diffs = {name: (t.run_network(x) - reference).abs().max().item() for name, t in backends.items()}
    for network, whole in calls.values():
        for _ in range(warmup):
            network(), whole()
    times: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in calls}
    for _ in range(repeats):  # interleaved: a burst of load elsewhere slows every backend in that round
        for name, (network, whole) in calls.items():
            for fn, out in ((network, times[name][0]), (whole, times[name][1])):
                start = time.perf_counter()
                fn()
                out.append(time.perf_counter() - start)
    rows = []
    for name, (net_times, whole_times) in times.items():
        rows.append({"model": path.stem, "size": f"{config.netG} ngf {config.ngf}, {config.crop_size} px",
                     "backend": name, "network": percentiles(net_times), "translate": percentiles(whole_times),
                     "max_diff": diffs[name]})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30, help="timed calls per backend (median reported)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls per backend first")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch and onnxruntime")
    parser.add_argument("--models", nargs="*", default=list(MODELS), help="checkpoints to measure")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    import onnxruntime

    print(f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, {torch.get_num_threads()} threads, "
          f"{platform.processor() or platform.machine()}; median of {args.repeats} (min-p90), ms per image")
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for model in args.models:
            rows += bench_model(ROOT / model, args.repeats, args.warmup, Path(folder))
    header = f"| {'model':<22} | {'network':<26} | {'backend':<23} | {'network ms':>22} | {'translate 512x384 ms':>22} | max abs diff vs fp32 |"
    print(header)
    print("|" + "|".join("-" * (len(cell)) for cell in header.split("|")[1:-1]) + "|")
    for row in rows:
        net = "{:.1f} ({:.1f}-{:.1f})".format(*(1000 * v for v in row["network"]))
        whole = "{:.1f} ({:.1f}-{:.1f})".format(*(1000 * v for v in row["translate"]))
        print(f"| {row['model']:<22} | {row['size']:<26} | {row['backend']:<23} | {net:>22} | {whole:>22} | "
              f"{row['max_diff']:>20.1e} |")


if __name__ == "__main__":
    main()
