"""A collapsed GAN (D has won, G turns to noise) stops the run with a clear message; healthy runs go on."""

from __future__ import annotations

import shutil

import numpy as np
import torch

from pix2pix_core.cli import main
from pix2pix_core.collapse import COLLAPSE_LOSS, CollapseWatch
from pix2pix_core.pix2pix_model import Pix2Pix
from pix2pix_core.train import FinishedEvent, Trainer, resume_config

from conftest import tiny_config
from test_crash_safety import train_args


def feed(watch: CollapseWatch, steps, d_losses) -> list[tuple[int, str]]:
    """(step, message) for every logged step the watch called a collapse."""
    said = []
    for step, (real, fake) in zip(steps, d_losses):
        message = watch.update(step, {"G_GAN": 1.0, "D_real": real, "D_fake": fake})
        if message:
            said.append((step, message))
    return said


def test_healthy_losses_never_stop_a_run() -> None:
    """Noisy D losses of a balanced GAN for 10,000 steps, then 10,000 of a strong D (window means near
    0.066, like the lowest healthy run measured) whose single values often dip below the threshold."""
    rng = np.random.default_rng(0)
    balanced = rng.lognormal(np.log(0.4), 0.8, size=(1000, 2))
    strong = rng.lognormal(np.log(0.04), 1.0, size=(1000, 2))
    assert (strong < COLLAPSE_LOSS).mean() > 0.2
    losses = np.concatenate([balanced, strong])
    assert feed(CollapseWatch(1000), range(10, 20001, 10), losses) == []


def test_a_collapse_stops_the_run_once_a_whole_window_has_d_winning() -> None:
    """Balanced until step 2,000, then D's losses near 0 (as the collapsed food runs'): the watch speaks
    when the window's means fall below the threshold, about a window later, and says what it saw."""
    steps = range(10, 6001, 10)
    losses = [(0.6, 0.5) if step <= 2000 else (0.002, 0.001) for step in steps]
    said = feed(CollapseWatch(1000), steps, losses)
    first_step, message = said[0]
    assert 2900 <= first_step <= 3000
    assert message.startswith("the GAN collapsed: the discriminator has won")
    assert "another seed and DiffAugment on D's inputs (--diff-augment translation,cutout)" in message
    assert "--collapse-steps 0" in message
    assert f"steps {first_step - 990}-{first_step}" in message


def test_a_window_is_needed_before_any_verdict() -> None:
    """D at 0 from the first step (a run just resumed inside a collapse): nothing until 1,000 steps are seen."""
    said = feed(CollapseWatch(1000), range(501, 3000), [(0.0, 0.0)] * 2499)
    assert said[0][0] == 1501


def test_sparse_logging_needs_ten_logged_steps_not_one() -> None:
    """Logged every 2,000 steps with a 1,000-step window: one near-zero batch decides nothing; ten do."""
    steps = range(2000, 40001, 2000)
    said = feed(CollapseWatch(1000), steps, [(0.6, 0.5)] * 5 + [(0.0, 0.0)] * 15)
    assert said[0][0] == 2000 * (5 + 10)


def test_one_loss_above_the_threshold_keeps_the_run_going() -> None:
    """D_real near 0 but D_fake balanced: D is not winning on both sides."""
    assert feed(CollapseWatch(100), range(1, 1000), [(0.0, 0.3)] * 999) == []
    assert feed(CollapseWatch(100), range(1, 1000), [(0.3, 0.0)] * 999) == []


def test_the_watch_is_off_at_zero_steps_and_for_losses_without_d_real() -> None:
    assert feed(CollapseWatch(0), range(1, 5000), [(0.0, 0.0)] * 4999) == []
    cyclegan = CollapseWatch(10)
    assert all(cyclegan.update(step, {"D_A": 0.0, "D_B": 0.0}) is None for step in range(1, 100))


def test_the_threshold_sits_below_every_healthy_window_measured() -> None:
    """The module doc's evidence: healthy runs' lowest 1,000-step mean was 0.063."""
    assert 0 < COLLAPSE_LOSS <= 0.063 / 3


def d_wins(original):
    """A train step whose D losses read as a won D (weights trained as usual)."""
    def step(self, batch):
        losses = original(self, batch)
        return {**losses, "D_real": torch.tensor(0.001), "D_fake": torch.tensor(0.003)}
    return step


def test_the_trainer_ends_a_collapsed_run_with_its_reason(facades_dir, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(Pix2Pix, "train_step", d_wins(Pix2Pix.train_step))
    events = []
    config = tiny_config(data=str(facades_dir), out=str(tmp_path / "run"), collapse_steps=3, max_steps=14,
                         epochs=5, checkpoint_every_steps=2)
    result = Trainer(config, callbacks=[events.append]).run()
    assert (result.reason, result.step) == ("collapsed", 10)  # logged from step 1: ten logged steps at step 10
    assert "the discriminator has won" in result.message and "0.001 and 0.003 over steps 1-10" in result.message
    assert result.checkpoint == tmp_path / "run" / "checkpoints" / "latest.safetensors"
    assert isinstance(events[-1], FinishedEvent) and events[-1].reason == "collapsed"


def test_a_collapse_names_the_newest_checkpoint_from_before_it(facades_dir, tmp_path, monkeypatch) -> None:
    """D wins from step 10 on; epoch checkpoints (3 steps each) were kept all along: the message points at
    the one from step 9, the last before the averaged window, and that file resumes."""
    original, steps = Pix2Pix.train_step, []

    def wins_after_nine(self, batch):
        steps.append(1)
        return d_wins(original)(self, batch) if len(steps) >= 10 else original(self, batch)

    monkeypatch.setattr(Pix2Pix, "train_step", wins_after_nine)
    run = tmp_path / "run"
    config = tiny_config(data=str(facades_dir), out=str(run), collapse_steps=3, epochs=20, save_every=1)
    result = Trainer(config).run()
    assert result.reason == "collapsed" and result.step in (18, 19)
    kept = run / "checkpoints" / "epoch_0003.safetensors"
    assert f"The newest checkpoint from before those steps is {kept} (step 9)" in result.message
    assert "--resume with --diff-augment translation,cutout" in result.message
    assert (run / "checkpoints" / "epoch_0006.safetensors").exists()  # newer ones are inside the collapse
    shutil.copyfile(kept, run / "checkpoints" / "latest.safetensors")
    again = resume_config(run, {"diff_augment": "translation,cutout", "collapse_steps": 0, "max_steps": 12})
    trainer = Trainer(again, resume=True)
    resumed = trainer.run()
    assert (resumed.reason, resumed.step) == ("max_steps", 12)
    assert trainer.model.config.augments == ("translation", "cutout")  # the advised fix took effect
    assert [int(row.split(",")[0]) for row in (run / "losses.csv").read_text().splitlines()[1:]] == list(range(1, 13))


def test_without_kept_checkpoints_the_message_names_none(facades_dir, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(Pix2Pix, "train_step", d_wins(Pix2Pix.train_step))
    config = tiny_config(data=str(facades_dir), out=str(tmp_path / "run"), collapse_steps=3, epochs=20)
    result = Trainer(config).run()
    assert result.reason == "collapsed" and "newest checkpoint" not in result.message


def test_a_healthy_tiny_run_is_not_stopped(facades_dir, tmp_path) -> None:
    config = tiny_config(data=str(facades_dir), out=str(tmp_path / "run"), collapse_steps=2, epochs=5)
    result = Trainer(config).run()
    assert result.reason == "finished" and result.step >= 12  # the watch judged every step from step 10


def test_the_command_line_says_why_and_exits_1(facades_dir, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(Pix2Pix, "train_step", d_wins(Pix2Pix.train_step))
    threads = torch.get_num_threads()
    try:
        code = main(train_args(facades_dir, tmp_path / "run", "--max-steps", "14", "--collapse-steps", "4"))
    finally:
        torch.set_num_threads(threads)
    assert code == 1
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("error: the GAN collapsed")


def test_the_app_reports_a_collapse_and_keeps_no_model(tmp_path) -> None:
    from demo.state import JobSnapshot, TrainingJob

    added = []
    job = TrainingJob(tmp_path / "runs", tmp_path / "models", on_model=added.append)
    job._state = JobSnapshot(version=1, phase="running", run="facades-1")
    checkpoint = tmp_path / "runs" / "facades-1" / "checkpoints" / "latest.safetensors"
    job._export(FinishedEvent(1500, 3, "collapsed", checkpoint, "the GAN collapsed: ..."), "facades-1")
    snapshot = job.snapshot()
    assert snapshot.phase == "failed" and added == [] and not (tmp_path / "models").exists()
    assert snapshot.message.startswith("facades-1 stopped at step 1500: the GAN collapsed")
    assert "DiffAugment ticked" in snapshot.message and len(snapshot.message) <= 300


def test_an_l1_only_run_is_not_watched(facades_dir, tmp_path) -> None:
    """With use_gan off D_real and D_fake are logged as 0: the watch must not call that a collapse."""
    config = tiny_config(data=str(facades_dir), out=str(tmp_path / "run"), use_gan=False, collapse_steps=2, epochs=5)
    result = Trainer(config).run()
    assert result.reason == "finished" and result.step >= 12
