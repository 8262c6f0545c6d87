"""Peak memory and item throughput of the training dataset: in memory vs the on-disk cache.

Generates N synthetic 512x256 A|B JPEG pairs (facades-like: a smooth photo half, a flat label half)
into a temporary folder, then, each in a fresh process so that peak RSS (ru_maxrss) is its own:

- memory: today's path, every pair decoded into RAM at load size;
- cache (build): the same split streamed into the disk cache (memory_budget_mb=0), then read;
- cache (reuse): a second run that finds the cache and only reads it (a resumed or repeated training);
- cache via np.memmap (--with-mmap): the cache read through a mapping instead of positional reads, to
  show why the reader does not map: touched file pages count as the process's RSS.

Then one process times both paths alternately on the same pairs (the fair items/s comparison on a
shared machine). Each run above times one shuffled pass of `dataset[i]` + `collate` (batch size --batch-size, training jitter,
one torch thread) and prints a table (items/s over the pass, and the median over chunks of 250 items,
steadier when other processes share the CPUs):

    python -m benchmarks.dataset_memory               # 12,000 pairs at load size 286 (~5.9 GB decoded)
    python -m benchmarks.dataset_memory --n 2000 --with-mmap
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]  # the children run as `-m benchmarks.dataset_memory` from here


def make_pairs(folder: Path, count: int, seed: int = 0) -> None:
    """count 512x256 JPEGs: left a noisy 'photo' with blocks, right its flat 'label map'."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:256, 0:256].astype(np.float32) / 256
    noise_bank = rng.normal(0, 6, (512, 512, 3)).astype(np.float32)
    palette = rng.integers(0, 255, (12, 3))
    for i in range(count):
        ids = np.zeros((256, 256), dtype=np.int64)
        ids[20:, 16:240] = 1
        for _ in range(int(rng.integers(6, 16))):
            y, x = rng.integers(24, 230, 2)
            ids[y:y + rng.integers(8, 40), x:x + rng.integers(8, 40)] = rng.integers(2, 12)
        label = palette[ids].astype(np.float32)
        base = np.stack([yy * rng.uniform(40, 200), xx * rng.uniform(40, 200), (1 - yy) * rng.uniform(40, 200)], -1)
        oy, ox = rng.integers(0, 256, 2)
        photo = 0.5 * base + 0.5 * label + noise_bank[oy:oy + 256, ox:ox + 256]
        pair = np.concatenate([photo, label], axis=1)
        Image.fromarray(np.clip(pair, 0, 255).astype(np.uint8)).save(folder / f"{i:06d}.jpg", quality=90)


def speed_child(args) -> None:
    """items/s of both paths in ONE process, alternating chunks of 50 items over the first --speed-items
    pairs, so that other processes' load hits both alike (sequential runs on a shared 2-core machine
    can differ by 3x from load alone). Needs the cache already built by a `cache` run."""
    import dataclasses

    import torch
    torch.set_num_threads(1)
    from pix2pix_core.config import TrainConfig
    from pix2pix_core.data import PairDataset, build_dataset, collate

    config = TrainConfig(task="aligned", data=args.data, direction="BtoA", load_size=args.load_size,
                         crop_size=args.crop_size, cache_dir=args.cache_dir, memory_budget_mb=0)
    cached_full = build_dataset(config, "train", train=True)  # reuses the cache
    count = min(args.speed_items, len(cached_full))
    memory = build_dataset(dataclasses.replace(config, memory_budget_mb=1 << 30, max_images=count), "train", True)
    cached = PairDataset(cached_full.items[:count], config.task, config.crop_size, train=True, seed=config.seed)
    order = torch.randperm(count, generator=torch.Generator().manual_seed(1)).tolist()
    seconds = {"memory": [], "cache": []}
    for epoch in range(2):
        memory.set_epoch(epoch)
        cached.set_epoch(epoch)
        for first in range(0, count, 50):
            chunk = order[first:first + 50]
            for name, dataset in (("memory", memory), ("cache", cached)) if first % 100 == 0 else (
                    ("cache", cached), ("memory", memory)):
                start = time.perf_counter()
                for index in range(0, len(chunk), args.batch_size):
                    batch = collate([dataset[i] for i in chunk[index:index + args.batch_size]])
                seconds[name].append((len(chunk), time.perf_counter() - start))
                if name == "cache":  # same pixels on both paths
                    assert torch.equal(batch["input"], collate([memory[i] for i in chunk[index:index + args.batch_size]])["input"])
    result = {name: {"items_per_s": sum(n for n, _ in v) / sum(t for _, t in v),
                     "median_items_per_s": float(np.median([n / t for n, t in v]))} for name, v in seconds.items()}
    ratios = [tc / tm for (_, tm), (_, tc) in zip(seconds["memory"], seconds["cache"])]
    print(json.dumps({"mode": "speed", "items": count, "median_time_ratio": float(np.median(ratios)), **result}))


def child(args) -> None:
    """One measurement in this (fresh) process; prints one JSON line."""
    import torch
    torch.set_num_threads(1)  # per-item work is small; one thread is steadier on a shared machine
    from pix2pix_core import cache as disk_cache
    from pix2pix_core.config import TrainConfig
    from pix2pix_core.data import build_dataset, collate

    if args.mode == "mmap":
        def read_mapped(self, index):  # the alternative this module does not use, for comparison
            if not hasattr(self, "_maps"):
                shape = (len(self.names), 3, self.size, self.size)
                self._maps = [np.memmap(self.path / f"{side}.u8", np.uint8, "r", shape=shape)
                              for side in disk_cache.SIDES[:self.sides]]
            return [np.array(m[index]) for m in self._maps]
        disk_cache.DiskCache.read = read_mapped

    config = TrainConfig(task="aligned", data=args.data, direction="BtoA", load_size=args.load_size,
                         crop_size=args.crop_size, cache_dir=args.cache_dir,
                         memory_budget_mb=1 << 30 if args.mode == "memory" else 0)
    start = time.perf_counter()
    dataset = build_dataset(config, "train", train=True)
    load_s = time.perf_counter() - start
    rss_after_load = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(0)).tolist()
    if args.items:
        order = order[:args.items]
    dataset.set_epoch(0)
    checksum, chunk_rates, chunk_items = 0.0, [], 0
    start = chunk_start = time.perf_counter()
    for first in range(0, len(order), args.batch_size):
        batch = collate([dataset[i] for i in order[first:first + args.batch_size]])
        checksum += float(batch["input"][0, 0, 0, 0])
        chunk_items += len(batch["name"])
        if chunk_items >= 250:  # rates per chunk: the median resists other processes' bursts
            now = time.perf_counter()
            chunk_rates.append(chunk_items / (now - chunk_start))
            chunk_start, chunk_items = now, 0
    seconds = time.perf_counter() - start
    print(json.dumps({"mode": args.mode, "items": len(order), "load_s": load_s, "rss_load_mb": rss_after_load,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "items_per_s": len(order) / seconds,
                      "median_items_per_s": float(np.median(chunk_rates)) if chunk_rates else len(order) / seconds,
                      "checksum": checksum}))


def run_child(mode: str, data: Path, cache_dir: Path, args) -> dict:
    command = [sys.executable, "-m", "benchmarks.dataset_memory", "--child", mode, "--data", str(data), "--cache-dir", str(cache_dir),
               "--load-size", str(args.load_size), "--crop-size", str(args.crop_size),
               "--batch-size", str(args.batch_size), "--items", str(args.items or 0),
               "--speed-items", str(args.speed_items)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if result.returncode != 0:
        raise SystemExit(f"{mode} run failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=12000, help="number of 512x256 pairs to generate")
    parser.add_argument("--load-size", type=int, default=286)
    parser.add_argument("--crop-size", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--items", type=int, default=0, help="time this many items per run (0 = one full pass)")
    parser.add_argument("--workdir", help="where to generate data and the cache (default: a temp folder, deleted)")
    parser.add_argument("--with-mmap", action="store_true", help="also measure reading the cache through np.memmap")
    parser.add_argument("--skip-memory", action="store_true", help="skip the in-memory run (it needs the RAM)")
    parser.add_argument("--speed-items", type=int, default=2000,
                        help="pairs for the interleaved items/s comparison (both paths in one process)")
    parser.add_argument("--child", choices=("memory", "cache", "mmap", "speed"), help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--cache-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "speed":
        return speed_child(args)
    if args.child:
        args.mode = args.child
        args.items = args.items or None
        return child(args)

    work = Path(args.workdir or tempfile.mkdtemp(prefix="p2p_dataset_memory_"))
    try:
        data, cache_dir = work / "data", work / "cache"
        train = data / "train"
        if not (train.is_dir() and len(list(train.glob("*.jpg"))) == args.n):
            shutil.rmtree(data, ignore_errors=True)
            start = time.perf_counter()
            make_pairs(train, args.n)
            print(f"generated {args.n} pairs of 512x256 JPEGs in {time.perf_counter() - start:.0f} s "
                  f"({sum(p.stat().st_size for p in train.iterdir()) / 2**20:.0f} MB)", flush=True)
        shutil.rmtree(cache_dir, ignore_errors=True)
        decoded = args.n * 2 * 3 * args.load_size ** 2
        print(f"decoded at load size {args.load_size}: {decoded / 2**30:.2f} GB; "
              f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs", flush=True)
        runs = []
        for label, mode in ([] if args.skip_memory else [("memory", "memory")]) + [
                ("cache (build)", "cache"), ("cache (reuse)", "cache")] + (
                [("cache via np.memmap", "mmap")] if args.with_mmap else []):
            result = run_child(mode, data, cache_dir, args)
            runs.append((label, result))
            print(f"  {label}: done", flush=True)
        speed = run_child("speed", data, cache_dir, args)
        checksums = {round(r["checksum"], 3) for _, r in runs}
        print()
        print(f"{'path':<22} {'load s':>8} {'RSS after load MB':>18} {'peak RSS MB':>12} {'items/s':>9} "
              f"{'median items/s':>15}")
        for label, r in runs:
            print(f"{label:<22} {r['load_s']:>8.1f} {r['rss_load_mb']:>18.0f} {r['peak_rss_mb']:>12.0f} "
                  f"{r['items_per_s']:>9.1f} {r['median_items_per_s']:>15.1f}")
        print(f"\ninterleaved in one process ({speed['items']} pairs x 2 epochs, chunks of 50 alternating; "
              f"median time ratio cache/memory per chunk {speed['median_time_ratio']:.3f}):")
        for name in ("memory", "cache"):
            print(f"  {name:<7} {speed[name]['items_per_s']:>8.1f} items/s (median chunk "
                  f"{speed[name]['median_items_per_s']:.1f})")
        size = sum(p.stat().st_size for p in cache_dir.rglob("*.u8"))
        print(f"\ncache on disk: {size / 2**30:.2f} GB; same items in every run: {len(checksums) == 1}")
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
