"""Training-step and inference speed of pix2pix on random 256x256 data; prints a table.

    python -m benchmarks.train_speed             # the standard table
    python -m benchmarks.train_speed --quick     # fewer configs and steps
    python -m benchmarks.train_speed --profile   # where the time of one step goes

FLOPs are counted once per config with torch.utils.flop_counter (convolutions and matmuls, forward and
backward), so GFLOP/s is the achieved arithmetic rate, comparable with the CPU's conv ceiling.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from pix2pix_core.config import TrainConfig
from pix2pix_core.pix2pix_model import Pix2Pix


def make_model(ngf: int, ndf: int, batch: int, precision: str, channels_last: bool) -> Pix2Pix:
    config = TrainConfig(ngf=ngf, ndf=ndf, batch_size=batch, precision=precision, channels_last=channels_last)
    model = Pix2Pix(config.validate())  # on the CPU, as the training loop builds it outside torchrun
    model.train()
    return model


def random_batch(batch: int, channels_last: bool) -> dict[str, torch.Tensor]:
    memory = torch.channels_last if channels_last else torch.contiguous_format
    return {"input": torch.randn(batch, 3, 256, 256).contiguous(memory_format=memory),
            "target": torch.randn(batch, 3, 256, 256).contiguous(memory_format=memory)}


def time_steps(model: Pix2Pix, batch: int, channels_last: bool, steps: int) -> float:
    data = random_batch(batch, channels_last)
    for _ in range(2):  # warm-up: oneDNN picks kernels on the first calls
        model.train_step(data)
    start = time.perf_counter()
    for _ in range(steps):
        model.train_step(data)
    return (time.perf_counter() - start) / steps


def step_flops(model: Pix2Pix, batch: int, channels_last: bool) -> float:
    data = random_batch(batch, channels_last)
    with FlopCounterMode(display=False) as counter:
        model.train_step(data)
    return counter.get_total_flops()


def inference_ms(ngf: int, runs: int = 10) -> float:
    from pix2pix_core.inference import Translator
    from pix2pix_core.networks import build_generator

    config = TrainConfig(ngf=ngf)
    translator = Translator(build_generator(config), config)
    batch = torch.randn(1, 3, 256, 256)
    for _ in range(3):
        translator.run_network(batch)
    start = time.perf_counter()
    for _ in range(runs):
        translator.run_network(batch)
    return (time.perf_counter() - start) / runs * 1000


def conv_ceiling(dtype: torch.dtype, runs: int = 20) -> float:
    """GFLOP/s of one large 3x3 convolution (forward): what this CPU can do at best, to judge the steps by."""
    conv = torch.nn.Conv2d(256, 256, 3, padding=1).to(dtype).to(memory_format=torch.channels_last)
    x = torch.randn(4, 256, 64, 64, dtype=dtype).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        for _ in range(3):
            conv(x)
        start = time.perf_counter()
        for _ in range(runs):
            conv(x)
    seconds = (time.perf_counter() - start) / runs
    return 2 * x.numel() * 256 * 9 / seconds / 1e9


def profile_step(ngf: int, batch: int) -> None:
    from torch.profiler import ProfilerActivity, profile

    model = make_model(ngf, 64, batch, "bf16", True)
    data = random_batch(batch, True)
    for _ in range(2):
        model.train_step(data)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(3):
            model.train_step(data)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 configs, 3 steps each")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    torch.manual_seed(0)
    if args.profile:
        profile_step(64, 1)
        return
    configs = [  # (ngf, ndf, batch, precision, channels_last)
        (64, 64, 1, "fp32", False),  # the official code's setting
        (64, 64, 1, "bf16", False),
        (64, 64, 1, "bf16", True),
        (64, 64, 4, "bf16", True),
        (32, 32, 4, "bf16", True),  # the shipped facades model
    ]
    if args.quick:
        configs, args.steps = configs[:1] + configs[2:3] + configs[-1:], 3
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, random 256x256 data")
    print(f"conv ceiling (one 256->256 3x3 conv, 4x64x64): fp32 {conv_ceiling(torch.float32):.0f} GFLOP/s, "
          f"bf16 {conv_ceiling(torch.bfloat16):.0f} GFLOP/s\n")
    print(f"{'ngf':>4} {'ndf':>4} {'batch':>5} {'precision':>9} {'ch_last':>7} | {'s/step':>7} {'s/img':>6} "
          f"{'img/s':>6} {'GFLOP/step':>10} {'GFLOP/s':>8}")
    for ngf, ndf, batch, precision, channels_last in configs:
        model = make_model(ngf, ndf, batch, precision, channels_last)
        seconds = time_steps(model, batch, channels_last, args.steps)
        gflop = step_flops(model, batch, channels_last) / 1e9
        print(f"{ngf:>4} {ndf:>4} {batch:>5} {precision:>9} {str(channels_last):>7} | {seconds:7.3f} "
              f"{seconds / batch:6.3f} {batch / seconds:6.2f} {gflop:10.1f} {gflop / seconds:8.0f}", flush=True)
    print("\ngenerator inference, one 256x256 image (as Translator: bf16 weights on CPU, channels_last, batch statistics as at batch size 1):")
    for ngf in (64, 32):
        print(f"  ngf {ngf}: {inference_ms(ngf):.1f} ms")


if __name__ == "__main__":
    main()
