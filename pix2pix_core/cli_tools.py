"""The CLI commands that use trained models: test, translate, export."""

from __future__ import annotations

import argparse


def cmd_export(args) -> int:
    import torch

    from .checkpoint import export_generator

    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[args.dtype]
    path = export_generator(args.checkpoint, args.out, dtype)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0


def add_commands(sub) -> None:
    p = sub.add_parser("export", help="write the generator alone (for shipping)",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="training checkpoint or run folder")
    p.add_argument("--out", required=True, help="output .safetensors file")
    p.add_argument("--dtype", choices=("fp16", "bf16", "fp32"), default="fp16", help="weight precision")
    p.set_defaults(handler=cmd_export)
