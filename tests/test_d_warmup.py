"""--d-warmup-steps: a fine-tune's fresh D first learns the generator's outputs alone, G untouched."""

from __future__ import annotations

import pytest
import torch

from pix2pix_core.checkpoint import load_generator
from pix2pix_core.cli import _config_from_args, build_parser
from pix2pix_core.config import TrainConfig
from pix2pix_core.errors import Pix2PixError
from pix2pix_core.pix2pix_model import Pix2Pix
from pix2pix_core.train import Trainer

from conftest import tiny_config
from test_collapse import d_wins


def _weights(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Trained weights only: batch norm's running statistics follow every forward pass in train mode."""
    return {k: v.detach().clone() for k, v in net.named_parameters()}


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_warmup_steps_train_d_alone_then_both(colorize_checkpoint, food_dir, tmp_path):
    """From a trained G (--init-from) with a fresh D: through the warm-up G and its average stay that G
    while D learns; the first step after it trains G as usual. Losses are logged all along."""
    start, _, _ = load_generator(colorize_checkpoint)
    start = _weights(start)
    config = tiny_config(task="colorize", data=str(food_dir), out=str(tmp_path / "warm"), direction="BtoA",
                         d_warmup_steps=3, max_steps=3, ema_decay=0.9, epochs=5)
    trainer = Trainer(config, init_generator=colorize_checkpoint)
    assert trainer.run().step == 3
    torch.manual_seed(config.seed)  # as Trainer builds its model: the run's initial D
    fresh_d = _weights(Pix2Pix(config).discriminator)
    assert _same(_weights(trainer.model.generator), start) and _same(_weights(trainer.model.generator_ema), start)
    assert trainer.model.ema_updates == 0 and not _same(_weights(trainer.model.discriminator), fresh_d)
    rows = (tmp_path / "warm" / "losses.csv").read_text().splitlines()
    assert len(rows) == 4 and all(float(row.split(",")[2]) > 0 for row in rows[1:])  # G_GAN as D sees G
    after = Trainer(tiny_config(**{**config.__dict__, "out": str(tmp_path / "after"), "max_steps": 4}),
                    init_generator=colorize_checkpoint)
    after.run()
    assert not _same(_weights(after.model.generator), start) and after.model.ema_updates == 1


def test_a_winning_d_during_the_warmup_is_not_a_collapse(facades_dir, tmp_path, monkeypatch):
    """D alone against a fixed G is meant to win: the collapse check starts watching after the warm-up
    (the same run without warm-up is stopped at step 10, tests/test_collapse.py)."""
    monkeypatch.setattr(Pix2Pix, "train_step", d_wins(Pix2Pix.train_step))
    config = tiny_config(data=str(facades_dir), out=str(tmp_path / "run"), collapse_steps=3, d_warmup_steps=12,
                         max_steps=21, epochs=20)
    result = Trainer(config).run()
    assert (result.reason, result.step) == ("max_steps", 21)
    config = tiny_config(data=str(facades_dir), out=str(tmp_path / "run2"), collapse_steps=3, d_warmup_steps=12,
                         max_steps=30, epochs=20)
    result = Trainer(config).run()
    assert (result.reason, result.step) == ("collapsed", 22)  # ten logged steps after the warm-up's 12


def test_warmup_is_a_flag_and_checked(tmp_path):
    args = build_parser().parse_args(["train", "--data", str(tmp_path), "--out", str(tmp_path / "run"),
                                      "--d-warmup-steps", "500"])
    assert _config_from_args(args).d_warmup_steps == 500
    assert TrainConfig().d_warmup_steps == 0  # the paper: G and D from the first step
    for bad in (dict(d_warmup_steps=-1), dict(d_warmup_steps=5, use_gan=False),
                dict(d_warmup_steps=5, task="unpaired", model="cyclegan", conditional_D=False)):
        with pytest.raises(Pix2PixError, match="d_warmup_steps"):
            TrainConfig(**bad).validate()
