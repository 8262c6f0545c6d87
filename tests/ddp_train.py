"""`python -m pix2pix_core train ...` for torchrun, plus a rank callback: every rank writes its final
generator to DUMP/rank{N}_generator.safetensors, so tests/test_distributed.py can compare the ranks.

    torchrun --nproc_per_node 2 tests/ddp_train.py DUMP train --task facades ...
"""

from __future__ import annotations

import sys
from pathlib import Path

from safetensors.torch import save_file

from pix2pix_core import cli


def dump_to(folder: Path):
    def dump(rank: int, model) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in model.generator.state_dict().items()}
        save_file(state, str(folder / f"rank{rank}_generator.safetensors"))
    return dump


if __name__ == "__main__":
    from pix2pix_core import train

    dump = dump_to(Path(sys.argv[1]))

    class DumpingTrainer(train.Trainer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, rank_callbacks=[dump], **kwargs)

    train.Trainer = DumpingTrainer  # cmd_train imports Trainer from pix2pix_core.train when it runs
    sys.exit(cli.main(sys.argv[2:]))
