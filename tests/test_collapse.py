"""A collapsed GAN (D has won, G turns to noise) stops the run with a clear message; healthy runs go on."""

from __future__ import annotations

import shutil

import numpy as np
import torch

from pix2pix_core.cli import main
from pix2pix_core.collapse import COLLAPSE_LOSS, CYCLEGAN_REMEDY, REMEDY, CollapseWatch
from pix2pix_core.pix2pix_model import Pix2Pix
from pix2pix_core.train import FinishedEvent, Trainer, resume_config

from conftest import tiny_config, train_args


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


def test_the_watch_is_off_at_zero_steps_and_for_losses_without_d_losses() -> None:
    assert feed(CollapseWatch(0), range(1, 5000), [(0.0, 0.0)] * 4999) == []
    assert all(CollapseWatch(0).update(step, {"D_A": 0.0, "D_B": 0.0}) is None for step in range(1, 100))
    no_d = CollapseWatch(10)
    assert all(no_d.update(step, {"G_L1": 0.0, "D_A": 0.0}) is None for step in range(1, 100))


def feed_cyclegan(watch: CollapseWatch, steps, d_losses) -> list[tuple[int, str]]:
    """(step, message) for every logged step the watch called a collapse, fed CycleGAN's losses."""
    said = []
    for step, (d_a, d_b) in zip(steps, d_losses):
        message = watch.update(step, {"G_GAN_AB": 1.0, "cycle_A": 0.3, "D_A": d_a, "D_B": d_b})
        if message:
            said.append((step, message))
    return said


def test_a_cyclegan_discriminator_that_wins_stops_the_run() -> None:
    """CycleGAN's D_A / D_B were ignored: D_B near 0 from step 2,000 is called a collapse about a window
    later, naming D_B, the generator it trains and CycleGAN's own remedy (it has no DiffAugment)."""
    steps = range(10, 6001, 10)
    watch = CollapseWatch(1000)
    said = feed_cyclegan(watch, steps, [(0.25, 0.3 if step <= 2000 else 0.001) for step in steps])
    first_step, message = said[0]
    assert 2900 <= first_step <= 3000
    assert message.startswith("the GAN collapsed: the discriminator D_B has won, its loss (the mean of its real "
                              "and fake losses) averaged 0.010 over steps")  # the first window mean below 0.01
    assert "averaged 0.001 over steps 5010-6000" in said[-1][1]
    assert f"steps {first_step - 990}-{first_step}" in message and "so G (A -> B) no longer learns" in message
    assert "(--d-lr-factor 0.5; DiffAugment is for pix2pix runs)" in message and "--collapse-steps 0" in message
    assert "--diff-augment" not in message and watch.remedy == CYCLEGAN_REMEDY == "--d-lr-factor 0.5"


def test_both_cyclegan_discriminators_winning_are_both_named() -> None:
    said = feed_cyclegan(CollapseWatch(100), range(1, 200), [(0.002, 0.004)] * 199)
    assert said[0][0] == 101
    assert "the discriminators D_A and D_B have won, their losses" in said[0][1]
    assert "averaged 0.002 and 0.004" in said[0][1] and "F (B -> A) and G (A -> B) no longer learn" in said[0][1]


def test_a_cyclegan_d_is_judged_as_pix2pix_would_judge_its_real_and_fake_losses() -> None:
    """D_A is the mean of D_A's real and fake losses: below half the threshold, both are below it; a mean
    just under the threshold may hide one loss above it, so it goes on. Healthy LSGAN losses never stop it."""
    assert feed_cyclegan(CollapseWatch(100), range(1, 1000), [(COLLAPSE_LOSS * 0.9, 0.3)] * 999) == []
    assert feed_cyclegan(CollapseWatch(100), range(1, 1000), [(COLLAPSE_LOSS * 0.45, 0.3)] * 999) != []
    rng = np.random.default_rng(0)
    assert feed_cyclegan(CollapseWatch(1000), range(10, 20001, 10), rng.lognormal(np.log(0.2), 0.8, (2000, 2))) == []


def test_a_pix2pix_watch_keeps_its_remedy_and_exact_message() -> None:
    watch = CollapseWatch(10)
    said = feed(watch, range(1, 12), [(0.001, 0.0026)] * 11)
    assert watch.remedy == REMEDY
    assert said[0] == (11, "the GAN collapsed: the discriminator has won, its real and fake losses averaged 0.001 "
                           "and 0.003 over steps 2-11 (balanced training keeps them near 0.1-0.7), so the generator "
                           "no longer learns what real images look like and its outputs turn to noise; look at the "
                           "latest samples. Start again with another seed and DiffAugment on D's inputs "
                           "(--diff-augment translation,cutout) or fewer --num-d scales; a slower D (--d-lr-factor "
                           "0.5) only delayed it in the runs measured (--collapse-steps 0 turns this check off)")


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


def test_the_app_does_not_advise_diffaugment_for_a_collapsed_cyclegan(tmp_path) -> None:
    """The app refuses DiffAugment for unpaired runs, so its pix2pix advice would send the user in circles."""
    from demo.state import JobSnapshot, TrainingJob

    job = TrainingJob(tmp_path / "runs", tmp_path / "models", on_model=lambda _: None)
    job._state = JobSnapshot(version=1, phase="running", run="unpaired-1")
    job._method = "cyclegan"
    checkpoint = tmp_path / "runs" / "unpaired-1" / "checkpoints" / "latest.safetensors"
    job._export(FinishedEvent(1500, 3, "collapsed", checkpoint, "the GAN collapsed: ..."), "unpaired-1")
    snapshot = job.snapshot()
    assert snapshot.phase == "failed" and snapshot.message.startswith("unpaired-1 stopped at step 1500: the GAN")
    assert "DiffAugment ticked" not in snapshot.message and "--d-lr-factor 0.5" in snapshot.message
    assert len(snapshot.message) <= 300


def test_an_l1_only_run_is_not_watched(facades_dir, tmp_path) -> None:
    """With use_gan off D_real and D_fake are logged as 0: the watch must not call that a collapse."""
    config = tiny_config(data=str(facades_dir), out=str(tmp_path / "run"), use_gan=False, collapse_steps=2, epochs=5)
    result = Trainer(config).run()
    assert result.reason == "finished" and result.step >= 12
