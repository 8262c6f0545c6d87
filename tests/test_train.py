"""The trainer: it learns, emits events, stops cleanly, schedules the LR and round-trips checkpoints."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import tiny_config
from pix2pix_core.checkpoint import export_generator, load_generator, read_checkpoint
from pix2pix_core.config import TrainConfig
from pix2pix_core.errors import Pix2PixError
from pix2pix_core.inference import Translator
from pix2pix_core.train import (CheckpointEvent, EpochEvent, FinishedEvent, LoadingEvent, LossEvent, SampleEvent,
                                Trainer, lr_factor)


def test_overfitting_a_few_pairs_lowers_the_l1_loss(facades_dir, tmp_path):
    """L1-dominated training on 6 tiny pairs: the last steps' L1 is well below the first steps'."""
    config = tiny_config(task="facades", data=str(facades_dir), out=str(tmp_path), epochs=25, lr=1e-3,
                         flip=False, load_size=128, max_images=4, batch_size=4, dropout=False)
    losses = []
    Trainer(config, callbacks=[lambda e: isinstance(e, LossEvent) and losses.append(e.losses["G_L1"])]).run()
    assert len(losses) == 25
    first, last = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
    assert last < 0.6 * first, (first, last)


def test_events_and_files(facades_dir, tmp_path):
    config = tiny_config(task="facades", data=str(facades_dir), out=str(tmp_path), epochs=2, sample_every=2,
                         save_every=1)
    events = []
    result = Trainer(config, callbacks=[events.append]).run()
    kinds = {type(e) for e in events}
    assert {LoadingEvent, LossEvent, SampleEvent, CheckpointEvent, EpochEvent, FinishedEvent} <= kinds
    loading = [e for e in events if isinstance(e, LoadingEvent)]
    assert loading[-1] == LoadingEvent(6, 6) and events.index(loading[-1]) < events.index(next(
        e for e in events if isinstance(e, LossEvent)))  # the dataset loads before the first step
    assert result.reason == "finished" and result.step == 6 and result.epoch == 2
    loss = next(e for e in events if isinstance(e, LossEvent))
    assert set(loss.losses) == {"G_GAN", "G_L1", "D_real", "D_fake", "G_feat"} and loss.images_per_second > 0
    sample = next(e for e in events if isinstance(e, SampleEvent))
    assert sample.image.size == (3 * 128, 128) and sample.path.exists()
    lines = (tmp_path / "losses.csv").read_text().splitlines()
    assert lines[0].startswith("step,epoch,G_GAN,G_L1,D_real,D_fake") and len(lines) == 7
    assert (tmp_path / "checkpoints" / "latest.safetensors").exists()
    assert (tmp_path / "checkpoints" / "epoch_0002.safetensors").exists()


def test_stop_from_another_thread_saves_a_checkpoint(facades_dir, tmp_path):
    config = tiny_config(task="facades", data=str(facades_dir), out=str(tmp_path), epochs=1000)
    trainer = Trainer(config, callbacks=[lambda e: isinstance(e, LossEvent) and e.step == 4 and trainer.stop()])
    result = trainer.run()
    assert result.reason == "stopped" and result.step == 4
    _, metadata = read_checkpoint(result.checkpoint)
    assert '"step": 4' in metadata["state"]


def test_a_run_stopped_while_loading_takes_away_the_run_folder_it_made(facades_dir, tmp_path):
    """Stopped before its first step (the app's Stop, a Ctrl-C while the dataset loads): the run folder it made
    held nothing, and stayed; one that was there before stays."""
    for out, existed in ((tmp_path / "new", False), (tmp_path / "old", True)):
        if existed:
            out.mkdir()
        trainer = Trainer(tiny_config(task="facades", data=str(facades_dir), out=str(out)))
        trainer.callbacks.append(lambda event: isinstance(event, LoadingEvent) and trainer.stop())
        result = trainer.run()
        assert (result.reason, result.step, result.checkpoint) == ("stopped", 0, None)
        assert out.exists() == existed


def test_max_steps(facades_dir, tmp_path):
    config = tiny_config(task="facades", data=str(facades_dir), out=str(tmp_path), epochs=10, max_steps=5)
    result = Trainer(config).run()
    assert (result.reason, result.step) == ("max_steps", 5)


def test_lr_is_constant_then_decays_linearly():
    config = TrainConfig(epochs=100, epochs_decay=100)
    assert lr_factor(config, 0) == lr_factor(config, 99) == 1.0  # epochs are 0-based: 100 constant epochs
    assert lr_factor(config, 100) == pytest.approx(1 - 1 / 101)
    assert lr_factor(config, 199) == pytest.approx(1 / 101)  # as the official code: never exactly 0
    factors = [lr_factor(config, e) for e in range(100, 200)]
    assert all(a > b for a, b in zip(factors, factors[1:]))


def test_l1_only_and_gan_only_variants_train(facades_dir, tmp_path):
    """Each ablation trains, and is what it says: L1 only leaves D untouched, cGAN only has no L1, the pixel D
    scores every pixel, the unconditional D sees the output's 3 channels only."""
    from torch import nn
    for name, overrides in {"l1": dict(use_gan=False), "gan": dict(lambda_l1=0.0), "lsgan": dict(gan_mode="lsgan"),
                            "pixel": dict(netD="pixel"), "uncond": dict(conditional_D=False)}.items():
        config = tiny_config(task="facades", data=str(facades_dir), out=str(tmp_path / name), max_steps=2, **overrides)
        losses = []
        trainer = Trainer(config, callbacks=[lambda e: losses.append(e.losses) if isinstance(e, LossEvent) else None])
        assert trainer.run().step == 2 and len(losses) == 2
        if name == "l1":
            assert all(l["G_GAN"] == l["D_real"] == l["D_fake"] == 0 for l in losses)
            assert trainer.model.discriminator is None and trainer.model.opt_d is None  # no D is built
            continue
        assert trainer.model.opt_d.state
        assert all(l["G_GAN"] > 0 and l["D_real"] > 0 for l in losses)
        if name == "gan":
            assert all(l["G_L1"] == 0 for l in losses)
        first_conv = next(m for m in trainer.model.discriminator.modules() if isinstance(m, nn.Conv2d))
        assert first_conv.in_channels == (3 if name == "uncond" else 6)
        if name == "pixel":
            with torch.no_grad():
                scores = trainer.model.discriminator(torch.zeros(1, 6, 128, 128))
            assert scores.shape[-2:] == (128, 128)


def test_an_l1_only_run_saves_no_d_and_resumes_an_older_checkpoint_that_holds_one(facades_dir, tmp_path):
    """--no-gan built, saved and counted a D it never ran: its checkpoints held D's weights. They hold G and its
    moments only now; a --no-gan checkpoint written before (D's untrained weights, optD_groups) still resumes."""
    from safetensors.torch import save_file
    from pix2pix_core.networks import build_discriminator
    from pix2pix_core.pix2pix_model import adam
    from pix2pix_core.train import resume_config

    config = tiny_config(task="facades", data=str(facades_dir), out=str(tmp_path / "run"), use_gan=False,
                         max_steps=2, epochs=3)
    result = Trainer(config).run()
    tensors, metadata = read_checkpoint(result.checkpoint)
    state = json.loads(metadata["state"])
    assert not any(k.startswith(("D.", "optD.")) for k in tensors) and "optD_groups" not in state
    assert any(k.startswith("optG.") for k in tensors) and state["step"] == 2

    discriminator = build_discriminator(config)  # what the older code saved: D as built, its Adam never stepped
    tensors.update({f"D.{k}": v for k, v in discriminator.state_dict().items()})
    state["optD_groups"] = adam(discriminator.parameters(), config, torch.device("cpu")).state_dict()["param_groups"]
    save_file(tensors, str(result.checkpoint), {**metadata, "state": json.dumps(state)})
    resumed = Trainer(resume_config(tmp_path / "run", {"max_steps": 4}), resume=True).run()
    assert (resumed.reason, resumed.step) == ("max_steps", 4)
    assert not any(k.startswith(("D.", "optD.")) for k in read_checkpoint(resumed.checkpoint)[0])


def test_checkpoint_round_trip_and_export(facades_checkpoint, tmp_path):
    generator, config, _ = load_generator(facades_checkpoint)
    exported = export_generator(facades_checkpoint, tmp_path / "g.safetensors")
    tensors, metadata = read_checkpoint(exported)
    assert metadata["kind"] == "generator" and not any(k.startswith(("D.", "optG.")) for k in tensors)
    assert all(v.dtype == torch.float16 for k, v in tensors.items() if v.is_floating_point())
    reloaded, config2, _ = load_generator(exported)
    # the run's config without the trainer's paths: the data folder's name, the default run folder and cache
    assert config2 == TrainConfig(**{**vars(config), "data": Path(config.data).name, "out": TrainConfig.out,
                                     "cache_dir": ""})
    for (name, a), (_, b) in zip(generator.state_dict().items(), reloaded.state_dict().items()):
        assert torch.allclose(a.float(), b.float(), atol=1e-3, rtol=1e-3), name
    assert exported.stat().st_size < facades_checkpoint.stat().st_size / 2


@pytest.mark.parametrize("dtype", ["fp16", torch.int8, torch.float64, None])
def test_export_takes_the_three_weight_dtypes_and_says_so(facades_checkpoint, tmp_path, dtype):
    """dtype="fp16" failed as torch's "Invalid device string: 'fp16'"; an integer dtype truncated every weight."""
    with pytest.raises(Pix2PixError, match=r"^dtype must be torch.float16, torch.bfloat16 or torch.float32, got "
                                           + re.escape(repr(dtype))):
        export_generator(facades_checkpoint, tmp_path / "g.safetensors", dtype)
    assert not (tmp_path / "g.safetensors").exists()
    tensors, _ = read_checkpoint(export_generator(facades_checkpoint, tmp_path / "g.safetensors", torch.bfloat16))
    assert {v.dtype for v in tensors.values() if v.is_floating_point()} == {torch.bfloat16}


def test_bf16_autocast_training_runs(facades_dir, tmp_path):
    config = tiny_config(task="facades", data=str(facades_dir), out=str(tmp_path), max_steps=2, precision="bf16")
    assert Trainer(config).run().step == 2


def test_fine_tune_from_an_exported_generator(facades_checkpoint, facades_dir, tmp_path):
    exported = export_generator(facades_checkpoint, tmp_path / "g.safetensors", torch.float32)
    config = tiny_config(task="facades", data=str(facades_dir), out=str(tmp_path / "ft"), max_steps=1, lr=1e-12)
    Trainer(config, init_generator=exported).run()
    start, _, _ = load_generator(exported)
    tuned, _, _ = load_generator(tmp_path / "ft" / "checkpoints" / "latest.safetensors")
    weight = next(k for k in start.state_dict() if k.endswith("weight"))
    assert torch.allclose(start.state_dict()[weight], tuned.state_dict()[weight], atol=1e-6)


def test_fine_tune_refuses_a_different_architecture(facades_checkpoint, facades_dir, tmp_path):
    config = tiny_config(task="facades", data=str(facades_dir), out=str(tmp_path), max_steps=1, ngf=16)
    with pytest.raises(Pix2PixError, match="ngf"):
        Trainer(config, init_generator=facades_checkpoint).run()


def test_translator_output_is_seeded(facades_checkpoint):
    from conftest import random_label_map
    translator = Translator.load(facades_checkpoint)
    label_map = random_label_map(np.random.default_rng(0), 128)
    a, b, c = (np.asarray(translator.translate(label_map, seed=s)) for s in (1, 1, 2))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)  # dropout noise: a new seed is a new variation


def test_a_seeded_translation_neither_sees_nor_rewinds_other_random_draws(facades_checkpoint):
    """The app translates while its training thread draws random numbers: a draw from torch's process-wide
    generator in the middle of a translation (a hook before each dropout layer stands for that thread)
    must not change the picture, and must not be undone when the translation ends."""
    from torch import nn
    from conftest import random_label_map
    translator = Translator.load(facades_checkpoint)
    label_map = random_label_map(np.random.default_rng(0), 128)
    quiet = np.asarray(translator.translate(label_map, seed=1))
    draws = []
    for module in translator.generator.modules():
        if isinstance(module, nn.Dropout):
            module.register_forward_pre_hook(lambda module, args: draws.append(torch.rand(1)))
    torch.manual_seed(5)
    busy = np.asarray(translator.translate(label_map, seed=1))
    assert draws and np.array_equal(quiet, busy)
    after = torch.rand(1)
    torch.manual_seed(5)
    assert torch.equal(after, torch.rand(len(draws) + 1)[-1:])  # the stream went on past the other draws


def test_batch_norm_mode_follows_the_training_batch_size(facades_checkpoint):
    """Batch 1 (the paper): per-image statistics; larger batches: the running statistics of training."""
    from torch import nn
    generator, config, _ = load_generator(facades_checkpoint)
    norms = lambda t: [m for m in t.generator.modules() if isinstance(m, nn.BatchNorm2d)]
    assert config.batch_size == 1
    assert all(m.training and not m.track_running_stats for m in norms(Translator(generator, config)))
    config.batch_size = 4
    assert not any(m.training for m in norms(Translator(generator, config)))


def test_cpu_inference_in_bf16_weights_matches_fp32(facades_checkpoint, facades_dir):
    """precision auto on CPU converts the weights to bf16 once (faster than autocast per call), same picture."""
    import dataclasses
    label_map = next((facades_dir / "val").iterdir())
    outputs = {}
    for precision in ("fp32", "auto"):
        generator, config, _ = load_generator(facades_checkpoint)
        translator = Translator(generator, dataclasses.replace(config, precision=precision))
        expected = torch.float32 if precision == "fp32" else torch.bfloat16
        assert {p.dtype for p in translator.generator.parameters()} == {expected}
        outputs[precision] = np.asarray(translator.translate(label_map, seed=3), np.float32)
    assert outputs["auto"].shape == outputs["fp32"].shape
    assert np.abs(outputs["auto"] - outputs["fp32"]).mean() < 3  # 8-bit levels


def test_d_lr_factor_sets_the_discriminator_rate_through_the_schedule(facades_dir, tmp_path):
    config = tiny_config(task="facades", data=str(facades_dir), out=str(tmp_path), epochs=1, epochs_decay=2,
                         lr=4e-4, d_lr_factor=0.25)
    trainer = Trainer(config)
    trainer.run()
    g_rate = trainer.model.opt_g.param_groups[0]["lr"]
    assert g_rate == pytest.approx(4e-4 * lr_factor(config, 2))  # the last (decaying) epoch's rate
    assert [group["lr"] for group in trainer.model.opt_d.param_groups] == [pytest.approx(g_rate * 0.25)]


def test_d_lr_factor_is_a_flag_and_must_be_positive(tmp_path):
    from pix2pix_core.cli import _config_from_args, build_parser

    args = build_parser().parse_args(["train", "--data", str(tmp_path), "--out", str(tmp_path / "run"),
                                      "--d-lr-factor", "0.5"])
    assert _config_from_args(args).d_lr_factor == 0.5
    assert TrainConfig().d_lr_factor == 1.0  # the paper: one rate for both
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(Pix2PixError, match="d_lr_factor"):
            TrainConfig(d_lr_factor=bad).validate()


def test_settings_that_crash_training_are_refused_before_it_starts(facades_dir, tmp_path):
    """--log-every 0 was a ZeroDivisionError at the first step and --beta1 1.5 a ValueError from Adam, both
    tracebacks after the data loaded; a stored config with them still loads (validate() lets them through)."""
    for bad, match in ((dict(log_every=0), "log_every"), (dict(beta1=1.5), "beta1"), (dict(beta2=1.0), "beta2"),
                       (dict(beta1=-0.1), "beta1")):
        config = tiny_config(task="facades", data=str(facades_dir), out=str(tmp_path / "run"), **bad)
        assert config.validate() is config
        with pytest.raises(Pix2PixError, match=match):
            Trainer(config)
    assert not (tmp_path / "run").exists()


def test_negative_image_and_step_limits_are_refused(facades_dir, tmp_path):
    """--max-images -1 trained on all images but the last (paths[:-1]) and --max-steps -1 wrote an untrained
    checkpoint, both without a word; 0 still means no limit."""
    for bad in ("max_images", "max_steps"):
        with pytest.raises(Pix2PixError, match=f"{bad} must be >= 0"):
            Trainer(tiny_config(task="facades", data=str(facades_dir), out=str(tmp_path / "run"), **{bad: -1}))
    assert not (tmp_path / "run").exists()
    Trainer(tiny_config(task="facades", data=str(facades_dir), out=str(tmp_path / "run"), max_images=0, max_steps=0))


def test_negative_intervals_are_refused_before_training(facades_dir, tmp_path, capsys):
    """--sample-every -5 sampled every 5 steps (step % -5 == 0), --save-every -1 kept a checkpoint every epoch and
    --checkpoint-every-steps -2 refreshed latest every 2 steps, all without a word: each is refused in one line,
    from Python and from the command line, before anything is written; 0 still means none."""
    from pix2pix_core.cli import main

    run = tmp_path / "run"
    for bad, flag in (("sample_every", "--sample-every"), ("save_every", "--save-every"),
                      ("checkpoint_every_steps", "--checkpoint-every-steps")):
        with pytest.raises(Pix2PixError, match=f"^{bad} must be >= 0 .*got -5$"):
            Trainer(tiny_config(task="facades", data=str(facades_dir), out=str(run), **{bad: -5}))
        assert main(["train", "--data", str(facades_dir), "--out", str(run), flag, "-5"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"{bad} must be >= 0" in err[0], err
    assert not run.exists()
    Trainer(tiny_config(task="facades", data=str(facades_dir), out=str(run), sample_every=0, save_every=0,
                        checkpoint_every_steps=0))


def test_fp16_on_the_cpu_trains_with_loss_scaling(facades_dir, tmp_path):
    """Unscaled fp16 gradients underflow to 0; bf16 (the default) and fp32 need no scaler."""
    from pix2pix_core.pix2pix_model import grad_scalers
    cpu = torch.device("cpu")
    assert all(s.is_enabled() for s in grad_scalers(torch.float16, cpu))
    assert not any(s.is_enabled() for s in grad_scalers(torch.bfloat16, cpu) + grad_scalers(None, cpu))
    config = tiny_config(data=str(facades_dir), out=str(tmp_path / "run"), precision="fp16", max_steps=3)
    losses = []
    result = Trainer(config, callbacks=[lambda e: losses.append(e.losses) if isinstance(e, LossEvent) else None]).run()
    assert result.step == 3 and all(np.isfinite(v) for step in losses for v in step.values())


def test_a_fine_tune_of_another_shape_says_what_differs(facades_checkpoint, facades_dir, tmp_path):
    """'its ngf differ from this run' gave neither value: the message names both."""
    config = tiny_config(data=str(facades_dir), out=str(tmp_path / "run"), max_steps=1, ngf=16)
    with pytest.raises(Pix2PixError, match=r"its generator has ngf 8 \(this run: 16\)"):
        Trainer(config, init_generator=facades_checkpoint).run()


def test_a_config_without_data_is_refused_not_trained_on_the_current_folder(tmp_path, monkeypatch):
    """TrainConfig's data defaults to "", which read the current folder: a notebook's folder of pictures trained
    (with at most a warning that they were not pairs); a folder without any said "no images found in .". """
    from conftest import write_aligned

    write_aligned(tmp_path / "here", 2)
    monkeypatch.chdir(tmp_path / "here")
    with pytest.raises(Pix2PixError, match="no dataset: set TrainConfig's data to the dataset folder"):
        Trainer(tiny_config(task="facades", out=str(tmp_path / "run"), max_steps=1))
    assert not (tmp_path / "run").exists()
