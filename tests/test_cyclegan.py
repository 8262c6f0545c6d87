"""CycleGAN on the shared training loop: shapes, the cycle and identity losses on known inputs, the
history pool, unpaired data, a tiny run that lowers the cycle loss, exact resume, the CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file
from torch import nn

from pix2pix_core.cli import main
from pix2pix_core.config import cyclegan_config
from pix2pix_core.cyclegan_model import CycleGAN, ImagePool
from pix2pix_core.data import UnpairedDataset, build_dataset
from pix2pix_core.errors import Pix2PixError
from pix2pix_core.train import LossEvent, Trainer, resume_config

from conftest import write_collection


def tiny(**overrides):
    """ResNet-6 generators of width 8 on 32 px crops: a CycleGAN step in a fraction of a second."""
    values = dict(netG="resnet_6blocks", ngf=8, ndf=8, crop_size=32, load_size=36, batch_size=1, epochs=2,
                  epochs_decay=0, sample_every=0, save_every=0, precision="fp32", seed=0)
    values.update(overrides)
    return cyclegan_config(**values)


@pytest.fixture(scope="module")
def unpaired_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("unpaired")
    write_collection(root / "trainA", 5, (200, 60, 40), seed=1)  # sizes differ on purpose
    write_collection(root / "trainB", 3, (40, 90, 210), seed=2)
    write_collection(root / "testA", 2, (200, 60, 40), seed=3)
    write_collection(root / "testB", 2, (40, 90, 210), seed=4)
    return root


def state_of(path: Path) -> dict:
    with safe_open(str(path), framework="pt") as handle:
        return json.loads(handle.metadata()["state"])


def column(run: Path, name: str) -> list[float]:
    lines = (run / "losses.csv").read_text().splitlines()
    index = lines[0].split(",").index(name)
    return [float(line.split(",")[index]) for line in lines[1:] if line]


# ------------------------------------------------------------------------------------ the model
def test_defaults_are_the_official_ones() -> None:
    config = cyclegan_config()
    assert (config.netG, config.norm, config.gan_mode, config.netD, config.conditional_D) == \
        ("resnet_9blocks", "instance", "lsgan", "basic", False)
    assert (config.lambda_cycle, config.lambda_identity, config.pool_size, config.lr, config.beta1) == \
        (10.0, 0.5, 50, 2e-4, 0.5)
    with pytest.raises(Pix2PixError, match="unpaired"):
        cyclegan_config(task="facades")


def test_step_shapes_and_losses() -> None:
    model = CycleGAN(tiny())
    model.train()
    batch = {"input": torch.rand(2, 3, 32, 32) * 2 - 1, "target": torch.rand(2, 3, 32, 32) * 2 - 1}
    losses = model.train_step(batch)
    assert tuple(losses) == CycleGAN.LOSS_NAMES
    assert all(v.dim() == 0 and torch.isfinite(v) for v in losses.values())
    assert model.generator(batch["input"]).shape == (2, 3, 32, 32)
    assert model.generator_ba(batch["target"]).shape == (2, 3, 32, 32)
    assert model.discriminator_a(batch["input"]).shape == model.discriminator_b(batch["target"]).shape
    assert model.sample_grid().size == (6 * 32, 32)
    tensors, _ = model.state_dict()
    assert {k.split(".")[0] for k in tensors} == {"G", "F", "DA", "DB", "optG", "optD", "pool"}


class Shift(nn.Module):
    def __init__(self, amount: float):
        super().__init__()
        self.amount = amount

    def forward(self, x):
        return x + self.amount


def test_cycle_and_identity_losses_on_known_inputs() -> None:
    """G = +0.5, F = -0.5: F(G(a)) = a exactly (cycle 0), while identity sees |G(b) - b| = 0.5, weighted
    lambda_identity * lambda_cycle = 5. With G = F = +0.5 the cycle is off by 1 everywhere: 10."""
    model = CycleGAN(tiny())
    a, b = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    model.g_ab, model.g_ba = Shift(0.5), Shift(-0.5)
    _, losses = model.generator_losses(a, b)
    assert losses["cycle_A"].item() == pytest.approx(0, abs=1e-6)
    assert losses["cycle_B"].item() == pytest.approx(0, abs=1e-6)
    assert losses["idt_A"].item() == pytest.approx(2.5) and losses["idt_B"].item() == pytest.approx(2.5)
    model.g_ba = Shift(0.5)
    _, losses = model.generator_losses(a, b)
    assert losses["cycle_A"].item() == pytest.approx(10) and losses["cycle_B"].item() == pytest.approx(10)
    model.config.lambda_identity = 0
    _, losses = model.generator_losses(a, b)
    assert losses["idt_A"].item() == 0 and losses["idt_B"].item() == 0


def test_the_pool() -> None:
    torch.manual_seed(0)
    assert ImagePool(0).query(torch.ones(2, 3, 4, 4)).eq(1).all()
    pool = ImagePool(4)
    for value in range(4):  # filling: every image goes in and comes back as is
        assert pool.query(torch.full((1, 3, 4, 4), float(value))).eq(value).all()
    assert [int(p.max()) for p in pool.images] == [0, 1, 2, 3]
    returned = [int(pool.query(torch.full((1, 3, 4, 4), float(v))).max()) for v in range(10, 110)]
    old = sum(r < 10 or r != v for r, v in zip(returned, range(10, 110)))
    assert 30 < old < 70, old  # about half the fakes are swapped for an older one
    assert len(pool.images) == 4
    copy = ImagePool(4)
    copy.load(pool.state())
    assert all(torch.equal(x, y) for x, y in zip(copy.images, pool.images))


# ------------------------------------------------------------------------------------ data
def test_unpaired_data_draws_b_independently(unpaired_dir) -> None:
    config = tiny(data=str(unpaired_dir))
    dataset = build_dataset(config, "train", train=True)
    assert isinstance(dataset, UnpairedDataset) and len(dataset) == 5  # the larger collection
    item = dataset[0]
    assert item["input"].shape == item["target"].shape == (3, 32, 32)
    assert item["input"][0].mean() > item["input"][2].mean() and item["target"][2].mean() > item["target"][0].mean()
    draws = []
    for epoch in range(6):
        dataset.set_epoch(epoch)
        draws.append(tuple(dataset.b_index(i) for i in range(5)))
    assert len(set(draws)) > 1  # a new draw each epoch
    dataset.set_epoch(2)
    assert tuple(dataset.b_index(i) for i in range(5)) == draws[2]  # and replayable
    with pytest.raises(Pix2PixError, match="trainA"):
        build_dataset(tiny(data=str(unpaired_dir / "trainA")), "train")


# ------------------------------------------------------------------------------------ training
def test_a_tiny_unpaired_run_lowers_the_cycle_loss(unpaired_dir, tmp_path) -> None:
    run = tmp_path / "run"
    result = Trainer(tiny(data=str(unpaired_dir), out=str(run), epochs=8, lr=1e-3, sample_every=10)).run()
    assert (result.reason, result.step) == ("finished", 40)
    cycle = [a + b for a, b in zip(column(run, "cycle_A"), column(run, "cycle_B"))]
    assert sum(cycle[-5:]) / 5 < 0.6 * sum(cycle[:5]) / 5, cycle
    assert (run / "samples" / "step_0000010.png").exists() and (run / "samples" / "last.png").exists()
    tensors = load_file(str(run / "checkpoints" / "latest.safetensors"))
    assert tensors["pool.A"].shape == (40, 3, 32, 32)


def test_stop_and_resume_is_exact(unpaired_dir, tmp_path) -> None:
    """8 steps straight == 3 steps, stop(), resume to 8: identical weights, moments and pools."""
    base = dict(data=str(unpaired_dir), max_steps=8, pool_size=2)
    straight = Trainer(tiny(out=str(tmp_path / "straight"), **base)).run()
    assert (straight.reason, straight.step) == ("max_steps", 8)
    trainer = Trainer(tiny(out=str(tmp_path / "resumed"), **base))
    trainer.callbacks.append(lambda e: trainer.stop() if isinstance(e, LossEvent) and e.step == 3 else None)
    assert trainer.run().step == 3
    second = Trainer(resume_config(tmp_path / "resumed"), resume=True).run()
    assert (second.reason, second.step) == ("max_steps", 8)
    a = load_file(str(tmp_path / "straight" / "checkpoints" / "latest.safetensors"))
    b = load_file(str(tmp_path / "resumed" / "checkpoints" / "latest.safetensors"))
    assert a.keys() == b.keys()
    assert [k for k in a if not torch.equal(a[k], b[k])] == []


# ------------------------------------------------------------------------------------ CLI
def test_cli_train_then_translate_both_ways(unpaired_dir, tmp_path) -> None:
    run, threads = tmp_path / "run", torch.get_num_threads()
    try:
        code = main(["train", "--model", "cyclegan", "--task", "unpaired", "--data", str(unpaired_dir), "--out", str(run),
                     "--netG", "resnet_6blocks", "--ngf", "8", "--ndf", "8", "--crop-size", "32", "--load-size", "36",
                     "--epochs", "1", "--epochs-decay", "0", "--sample-every", "0", "--precision", "fp32",
                     "--threads", "1"])
        assert code == 0
        latest = run / "checkpoints" / "latest.safetensors"
        assert resume_config(run).model == "cyclegan" and state_of(latest)["step"] == 5
        for direction, inputs in (("AtoB", "testA"), ("BtoA", "testB")):
            out = tmp_path / direction
            assert main(["translate", "--checkpoint", str(latest), str(unpaired_dir / inputs), "--out", str(out),
                         "--direction", direction, "--device", "cpu"]) == 0
            assert len(list(out.glob("*.png"))) == 2
        shipped = tmp_path / "b_to_a.safetensors"
        assert main(["export", "--checkpoint", str(latest), "--out", str(shipped), "--direction", "BtoA",
                     "--dtype", "fp32"]) == 0
        assert main(["translate", "--checkpoint", str(shipped), str(unpaired_dir / "testB"), "--out",
                     str(tmp_path / "shipped"), "--device", "cpu"]) == 0
        for made in (tmp_path / "BtoA").glob("*.png"):  # the exported F translates as F in the checkpoint
            assert np.array_equal(np.asarray(Image.open(made)), np.asarray(Image.open(tmp_path / "shipped" / made.name)))
        report = tmp_path / "report"
        assert main(["test", "--checkpoint", str(latest), "--data", str(unpaired_dir), "--out", str(report),
                     "--device", "cpu"]) == 0
        metrics = json.loads((report / "metrics.json").read_text())
        assert (metrics["split"], metrics["count_A"], metrics["count_B"]) == ("test", 2, 2)
        assert 0 <= metrics["cycle_l1_A"] < 1 and 0 <= metrics["cycle_l1_B"] < 1
        page = (report / "index.html").read_text()
        assert "translated" in page and "reconstructed" in page and page.count("<tr class=\"example\">") == 4
    finally:
        torch.set_num_threads(threads)
    assert main(["train", "--model", "cyclegan", "--task", "facades", "--data", str(unpaired_dir),
                 "--out", str(tmp_path / "wrong")]) == 2


def test_d_lr_factor_slows_both_discriminators():
    model = CycleGAN(tiny(lr=2e-4, d_lr_factor=0.5))
    model.set_lr(1e-4)
    assert [g["lr"] for g in model.opt_g.param_groups] == [pytest.approx(1e-4)]
    assert [g["lr"] for g in model.opt_d.param_groups] == [pytest.approx(5e-5)]


def test_a_picture_seen_twice_in_an_epoch_gets_a_crop_each_time(unpaired_dir) -> None:
    """The jitter was seeded by the picture: with 5 A and 3 B pictures each B came round with one same crop."""
    dataset = build_dataset(tiny(data=str(unpaired_dir)), "train", train=True)
    repeats = []  # within one epoch: (times a B picture came round, its distinct crops)
    for epoch in range(4):
        dataset.set_epoch(epoch)
        crops: dict[int, list[bytes]] = {}
        for index in range(len(dataset)):
            crops.setdefault(dataset.b_index(index), []).append(dataset[index]["target"].numpy().tobytes())
        repeats += [(len(seen), len(set(seen))) for seen in crops.values() if len(seen) > 1]
    assert repeats and sum(distinct > 1 for _, distinct in repeats) >= len(repeats) // 2


def test_the_b_choice_has_a_stream_of_its_own() -> None:
    """b_index(i) used exactly the seed of A item i + 7's crop, so the two were correlated."""
    from pix2pix_core.data import B_CHOICE_SALT, jitter_seed

    seeds_of_crops = {jitter_seed(0, epoch, index) for epoch in range(3) for index in range(200)}
    seeds_of_choices = {jitter_seed(0, epoch, index) ^ B_CHOICE_SALT for epoch in range(3) for index in range(200)}
    assert not seeds_of_crops & seeds_of_choices


@pytest.mark.parametrize("flags, message", [(["--no-gan"], "no --no-gan"),
                                            (["--direction", "BtoA"], "no --direction BtoA"),
                                            (["--lambda-l1", "5"], "cyclegan has no --lambda-l1 (pix2pix's L1 "
                                                                   "to a target): its L1 terms are weighted by "
                                                                   "--lambda-cycle and --lambda-identity")])
def test_settings_cyclegan_would_ignore_are_refused(unpaired_dir, tmp_path, capsys, flags, message) -> None:
    code = main(["train", "--task", "unpaired", "--data", str(unpaired_dir), "--out", str(tmp_path / "run"),
                 "--max-steps", "1", *flags])
    assert code == 2 and message in capsys.readouterr().err


def test_an_onnx_file_holds_one_direction_and_says_which(unpaired_dir, tmp_path) -> None:
    """ONNX ignored --direction: B -> A silently ran the A -> B generator, and `test` scored G twice."""
    pytest.importorskip("onnxruntime")
    from pix2pix_core.errors import CheckpointError
    from pix2pix_core.export_formats import export_model
    from pix2pix_core.inference import Translator

    result = Trainer(tiny(data=str(unpaired_dir), out=str(tmp_path / "run"), max_steps=1)).run()
    for direction in ("AtoB", "BtoA"):
        onnx_file = export_model(result.checkpoint, tmp_path / f"{direction}.onnx", direction=direction)
        assert Translator.load(onnx_file, direction=direction).backend == "onnx"
        other = "BtoA" if direction == "AtoB" else "AtoB"
        with pytest.raises(CheckpointError, match=f"holds the CycleGAN's {direction} generator only"):
            Translator.load(onnx_file, direction=other)


# ------------------------------------------------------------------------------------ fine-tuning (--init-from)
@pytest.fixture(scope="module")
def cyclegan_checkpoint(unpaired_dir, tmp_path_factory) -> Path:
    """Two steps at a high LR (seed 0): G and F differ from any fresh init."""
    run = tmp_path_factory.mktemp("source") / "run"
    return Trainer(tiny(data=str(unpaired_dir), out=str(run), max_steps=2, lr=1e-2)).run().checkpoint


def generators_after_fine_tune(source, unpaired_dir, out: Path) -> tuple[dict, dict]:
    """G's and F's weights after one step at LR 1e-12 of a seed-1 run started from `source` (so: as loaded)."""
    trainer = Trainer(tiny(data=str(unpaired_dir), out=str(out), max_steps=1, lr=1e-12, seed=1),
                      init_generator=source)
    assert trainer.run().step == 1
    return trainer.model.generator.state_dict(), trainer.model.generator_ba.state_dict()


def fresh_generators() -> tuple[dict, dict]:
    """What a seed-1 run builds before any fine-tune (the trainer seeds, then builds the model)."""
    torch.manual_seed(1)
    model = CycleGAN(tiny(seed=1))
    return model.generator.state_dict(), model.generator_ba.state_dict()


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.allclose(a[k].float(), b[k].float(), atol=1e-3) for k in a)


@pytest.mark.parametrize("source", ["checkpoint", "both", "AtoB", "BtoA"])
def test_fine_tune_starts_g_and_f_from_a_cyclegan(cyclegan_checkpoint, unpaired_dir, tmp_path, source) -> None:
    """--init-from was refused for cyclegan. A training checkpoint and a `--direction both` export seed G and
    F; an AtoB export seeds G only, a BtoA one (F shipped as its only G.) seeds F only: the other starts fresh."""
    from pix2pix_core.checkpoint import export_generator

    path = cyclegan_checkpoint
    if source != "checkpoint":
        path = export_generator(cyclegan_checkpoint, tmp_path / f"{source}.safetensors", direction=source)
    tuned_g, tuned_f = generators_after_fine_tune(path, unpaired_dir, tmp_path / "tune")
    trained = load_file(str(cyclegan_checkpoint))
    trained_g = {k[2:]: v for k, v in trained.items() if k.startswith("G.")}
    trained_f = {k[2:]: v for k, v in trained.items() if k.startswith("F.")}
    fresh_g, fresh_f = fresh_generators()
    assert not same(trained_g, fresh_g) and not same(trained_f, fresh_f)  # the check below means something
    assert same(tuned_g, trained_g if source in ("checkpoint", "both", "AtoB") else fresh_g)
    assert same(tuned_f, trained_f if source in ("checkpoint", "both", "BtoA") else fresh_f)


def test_a_b_to_a_export_stays_b_to_a(cyclegan_checkpoint, unpaired_dir, tmp_path, capsys) -> None:
    """An export holding F alone (--direction BtoA): exported again it lost its direction (F became the
    file's G, and a fine-tune loaded it into G); `translate --direction BtoA` refused it; `test` scored its
    one generator both ways. And an export's training position was dropped when it was exported again."""
    from pix2pix_core.checkpoint import export_generator, read_header

    b_to_a = export_generator(cyclegan_checkpoint, tmp_path / "b_to_a.safetensors", direction="BtoA")
    again = tmp_path / "again.safetensors"
    assert main(["export", "--checkpoint", str(b_to_a), "--out", str(again), "--dtype", "fp32"]) == 0
    assert "the CycleGAN's B -> A generator F" in capsys.readouterr().out
    header = read_header(again)
    assert header["direction"] == "BtoA" and header["trained"] == read_header(b_to_a)["trained"] != "{}"
    tuned_g, tuned_f = generators_after_fine_tune(again, unpaired_dir, tmp_path / "tune")
    trained_f = {k[2:]: v for k, v in load_file(str(cyclegan_checkpoint)).items() if k.startswith("F.")}
    assert same(tuned_f, trained_f) and same(tuned_g, fresh_generators()[0])
    outputs = {}
    for direction in ("BtoA", None):  # no direction: the one generator it holds
        outputs[direction] = tmp_path / str(direction)
        assert main(["translate", "--checkpoint", str(again), str(unpaired_dir / "testB"), "--out",
                     str(outputs[direction]), *(["--direction", direction] if direction else []),
                     "--device", "cpu"]) == 0
    assert main(["translate", "--checkpoint", str(again), str(unpaired_dir / "testB"), "--out",
                 str(tmp_path / "AtoB"), "--direction", "AtoB", "--device", "cpu"]) == 2  # asked of F alone
    assert "holds the CycleGAN's B -> A generator only" in capsys.readouterr().err
    for made in outputs["BtoA"].glob("*.png"):
        assert np.array_equal(np.asarray(Image.open(made)), np.asarray(Image.open(outputs[None] / made.name)))
    assert main(["test", "--checkpoint", str(again), "--data", str(unpaired_dir), "--out", str(tmp_path / "r"),
                 "--device", "cpu"]) == 2
    assert "test needs both" in capsys.readouterr().err
    # a fine-tune says what it loads before the first step (nothing said that F alone came from the file)
    assert main(["train", "--model", "cyclegan", "--task", "unpaired", "--data", str(unpaired_dir), "--out",
                 str(tmp_path / "cli_tune"), "--netG", "resnet_6blocks", "--ngf", "8", "--ndf", "8", "--crop-size",
                 "32", "--load-size", "36", "--max-steps", "1", "--sample-every", "0", "--precision", "fp32",
                 "--init-from", str(again)]) == 0
    assert "fine-tuning: G (A -> B) fresh, F (B -> A) from again.safetensors" in capsys.readouterr().out
    both = tmp_path / "both.safetensors"
    assert main(["export", "--checkpoint", str(cyclegan_checkpoint), "--out", str(both), "--direction", "both"]) == 0
    assert main(["test", "--checkpoint", str(both), "--data", str(unpaired_dir), "--out", str(tmp_path / "r2"),
                 "--device", "cpu"]) == 0


def test_a_b_to_a_export_holds_f_under_g_on_disk_and_f_to_every_reader(cyclegan_checkpoint, tmp_path) -> None:
    """A --direction BtoA export stores F under G. with `direction: BtoA` (the format files already shipped have,
    exported again too); every reader sees F alone: load_generator, held_generators, generator_states, a
    TorchScript export's metadata; and `--direction both` from it is refused."""
    import warnings

    from pix2pix_core.checkpoint import (export_generator, generator_states, held_generators, load_generator,
                                         read_header)
    from pix2pix_core.errors import CheckpointError
    from pix2pix_core.export_formats import export_model

    trained_f = {k[2:]: v for k, v in load_file(str(cyclegan_checkpoint)).items() if k.startswith("F.")}
    b_to_a = export_generator(cyclegan_checkpoint, tmp_path / "b_to_a.safetensors", torch.float32, direction="BtoA")
    again = export_generator(b_to_a, tmp_path / "again.safetensors", torch.float32)
    for path in (b_to_a, again):
        on_disk = load_file(str(path))
        assert read_header(path)["direction"] == "BtoA" and {k.split(".")[0] for k in on_disk} == {"G"}
        assert same({k[2:]: v for k, v in on_disk.items()}, trained_f)
        assert held_generators(path) == ["BtoA"]
        states, _ = generator_states(path)
        assert list(states) == ["BtoA"] and same(states["BtoA"], trained_f)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # the direction it holds: no warning
            assert same(load_generator(path, direction="BtoA")[0].state_dict(), trained_f)
        with pytest.warns(UserWarning, match="holds the CycleGAN's B -> A generator only: it translates B -> A"):
            assert same(load_generator(path, direction="AtoB")[0].state_dict(), trained_f)
    with pytest.raises(CheckpointError, match="holds the CycleGAN's B -> A generator only, not both"):
        export_generator(b_to_a, tmp_path / "both.safetensors", direction="both")
    with pytest.raises(CheckpointError, match="B -> A generator only; leave --direction out"):
        export_generator(b_to_a, tmp_path / "asked.safetensors", direction="AtoB")
    files = {"pix2pix_metadata.json": ""}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the export says nothing (the tracer warned of instance norm's checks)
        exported = export_model(b_to_a, tmp_path / "f.pt", "torchscript")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch marks torch.jit.load deprecated
        torch.jit.load(str(exported), _extra_files=files)
    assert json.loads(files["pix2pix_metadata.json"])["generator"] == "BtoA"


def test_fine_tune_of_another_shape_names_both_values(cyclegan_checkpoint, unpaired_dir, tmp_path) -> None:
    with pytest.raises(Pix2PixError, match=r"its generators have ngf 8 \(this run: 16\)"):
        Trainer(tiny(data=str(unpaired_dir), out=str(tmp_path / "run"), max_steps=1, ngf=16),
                init_generator=cyclegan_checkpoint).run()


def test_fine_tune_from_a_pix2pix_model_is_refused(facades_checkpoint, unpaired_dir, tmp_path) -> None:
    """A pix2pix G (paired data, another task) would seed one direction of an unrelated translation."""
    with pytest.raises(Pix2PixError, match="it is a pix2pix model; a cyclegan run starts from a CycleGAN"):
        Trainer(tiny(data=str(unpaired_dir), out=str(tmp_path / "run"), max_steps=1),
                init_generator=facades_checkpoint).run()



@pytest.mark.parametrize("model", ["cyclegan", "pix2pix"])
def test_a_refused_fine_tune_is_all_the_command_says(model, facades_checkpoint, facades_dir, unpaired_dir, tmp_path,
                                                    capsys) -> None:
    """The run's first line said "fine-tuning: G (A -> B) from latest.safetensors" of a pix2pix model (or "G from
    ..." of one of another width), and the refusal followed it: the refusal now comes first, alone."""
    data, task = (unpaired_dir, "unpaired") if model == "cyclegan" else (facades_dir, "facades")
    code = main(["train", "--task", task, "--data", str(data), "--out", str(tmp_path / "run"), "--ngf", "16",
                 "--crop-size", "32", "--load-size", "36", "--netG", "resnet_6blocks", "--max-steps", "1",
                 "--init-from", str(facades_checkpoint)])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and err.count("\n") == 1 and err.startswith("error: cannot fine-tune"), (out, err)
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------------------------------ collapse
def test_a_collapsed_d_b_stops_a_cyclegan_run(unpaired_dir, tmp_path, monkeypatch) -> None:
    """The watch read pix2pix's D_real / D_fake only, so a CycleGAN whose D had won trained on to the end.
    D_B's loss reads as won from step 11: ten logged steps later the run stops, names D_B and the newest
    kept checkpoint from before (epoch 2, step 10), with CycleGAN's remedy, not pix2pix's DiffAugment."""
    original, steps = CycleGAN.train_step, []

    def d_b_wins_after_ten(self, batch):
        losses = original(self, batch)
        steps.append(1)
        return {**losses, "D_B": torch.tensor(0.001)} if len(steps) > 10 else losses

    monkeypatch.setattr(CycleGAN, "train_step", d_b_wins_after_ten)
    run = tmp_path / "run"
    result = Trainer(tiny(data=str(unpaired_dir), out=str(run), collapse_steps=3, epochs=8, save_every=1)).run()
    assert (result.reason, result.step) == ("collapsed", 20)
    assert result.message.startswith("the GAN collapsed: the discriminator D_B has won")
    assert "averaged 0.001 over steps 11-20" in result.message and "G (A -> B)" in result.message
    kept = run / "checkpoints" / "epoch_0002.safetensors"
    assert f"The newest checkpoint from before those steps is {kept} (step 10)" in result.message
    assert result.message.endswith("--resume with --d-lr-factor 0.5") and "--diff-augment" not in result.message


def test_a_pix2pix_option_given_to_cyclegan_is_named_alone() -> None:
    with pytest.raises(Pix2PixError, match=r"cyclegan does not support ema_decay \(pix2pix options\)$"):
        tiny(ema_decay=0.9).validate()


def test_a_run_without_a_history_pool_trains(unpaired_dir, tmp_path) -> None:
    """--pool-size 0 handed D the fakes still attached to G's graph: D's backward ran into G's freed graph."""
    result = Trainer(tiny(data=str(unpaired_dir), out=str(tmp_path / "run"), max_steps=2, pool_size=0)).run()
    assert result.step == 2


# ------------------------------------------------------------------------------------ which generator translates
def test_without_a_direction_an_export_translates_with_the_generator_it_holds(cyclegan_checkpoint, unpaired_dir,
                                                                              tmp_path, capsys) -> None:
    """`translate --checkpoint f.onnx` (an ONNX export of F) was refused, advising to export the A -> B one: the
    direction defaulted to AtoB. A safetensors export of F without a direction warned of a direction nobody asked
    for; with `--direction AtoB` asked, it translated B -> A under that name (ONNX refused it)."""
    import warnings

    pytest.importorskip("onnxruntime")
    from pix2pix_core.checkpoint import export_generator
    from pix2pix_core.errors import CheckpointError
    from pix2pix_core.export_formats import export_model
    from pix2pix_core.inference import Translator

    onnx_file = export_model(cyclegan_checkpoint, tmp_path / "f.onnx", direction="BtoA")
    b_to_a = export_generator(cyclegan_checkpoint, tmp_path / "f.safetensors", direction="BtoA")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert Translator.load(onnx_file).backend == "onnx"
        assert Translator.load(b_to_a, device="cpu").backend == "torch"
    with pytest.raises(CheckpointError, match="holds the CycleGAN's B -> A generator only; A -> B needs"):
        Translator.load(b_to_a, device="cpu", direction="AtoB")
    assert main(["translate", "--checkpoint", str(onnx_file), str(unpaired_dir / "testB"), "--out",
                 str(tmp_path / "out"), "--device", "cpu"]) == 0
    assert main(["translate", "--checkpoint", str(b_to_a), str(unpaired_dir / "testB"), "--out",
                 str(tmp_path / "asked"), "--direction", "AtoB", "--device", "cpu"]) == 2
    assert "B -> A generator only" in capsys.readouterr().err and not (tmp_path / "asked").exists()


def test_test_reads_the_split_it_is_given(cyclegan_checkpoint, unpaired_dir, tmp_path, capsys) -> None:
    """`test --split tset` (or any split without its {split}A/ folder) scored testA/ and testB/ instead, without a
    word; only the default split (val, which CycleGAN datasets do not have) falls back to test."""
    common = ["test", "--checkpoint", str(cyclegan_checkpoint), "--data", str(unpaired_dir), "--device", "cpu"]
    assert main([*common, "--out", str(tmp_path / "typo"), "--split", "tset"]) == 2
    assert "tsetA/ and tsetB/" in capsys.readouterr().err and not (tmp_path / "typo").exists()
    assert main([*common, "--out", str(tmp_path / "train"), "--split", "train"]) == 0
    assert json.loads((tmp_path / "train" / "metrics.json").read_text())["count_A"] == 5
    assert main([*common, "--out", str(tmp_path / "default")]) == 0
    assert json.loads((tmp_path / "default" / "metrics.json").read_text())["split"] == "test"
    assert main([*common, "--out", str(tmp_path / "sized"), "--size", "64"]) == 2  # it was ignored without a word
    assert "--size is for pix2pix models" in capsys.readouterr().err and not (tmp_path / "sized").exists()


def test_test_on_the_training_folders_says_so_as_pix2pix_does(cyclegan_checkpoint, unpaired_dir, tmp_path,
                                                               capsys) -> None:
    """`test --split train` of a CycleGAN scored trainA/ and trainB/ without the note pix2pix's report has (and
    `test` prints): these scores are on its training images."""
    common = ["test", "--checkpoint", str(cyclegan_checkpoint), "--data", str(unpaired_dir), "--device", "cpu",
              "--limit", "1"]
    assert main([*common, "--out", str(tmp_path / "train"), "--split", "train"]) == 0
    note = json.loads((tmp_path / "train" / "metrics.json").read_text())["data_note"]
    assert note == (f"{unpaired_dir / 'trainA'} and {unpaired_dir / 'trainB'} are the folders this model trained on: "
                    "these scores are on its training images")
    assert f"note: {note}\n" in capsys.readouterr().out and note in (tmp_path / "train" / "index.html").read_text()
    assert main([*common, "--out", str(tmp_path / "test")]) == 0
    assert "data_note" not in json.loads((tmp_path / "test" / "metrics.json").read_text())
    assert "training images" not in capsys.readouterr().out


def test_test_refuses_a_segmenter_for_a_cyclegan(cyclegan_checkpoint, unpaired_dir, tmp_path, capsys) -> None:
    """`test --segmenter FILE` (evaluate(segmenter=...)) on a CycleGAN was dropped without a word, as --size was."""
    assert main(["test", "--checkpoint", str(cyclegan_checkpoint), "--data", str(unpaired_dir), "--device", "cpu",
                 "--out", str(tmp_path / "seg"), "--segmenter", str(tmp_path / "seg.safetensors")]) == 2
    assert "--segmenter is for facades label map -> photo models" in capsys.readouterr().err
    assert not (tmp_path / "seg").exists()


def test_loading_progress_counts_both_collections_once(unpaired_dir, tmp_path) -> None:
    """The loading progress counted each collection from 1 again (the app showed "loading 5/5 images", then
    "1/3"); and trainA/ was decoded in full before an empty trainB/ was found."""
    seen: list[tuple[int, int]] = []
    build_dataset(tiny(data=str(unpaired_dir)), "train", progress=lambda done, total: seen.append((done, total)))
    assert seen == [(done, 8) for done in range(1, 9)]  # 5 in trainA/, then 3 in trainB/
    write_collection(tmp_path / "trainA", 2, (200, 60, 40), seed=1)
    (tmp_path / "trainB").mkdir()
    seen.clear()
    with pytest.raises(Pix2PixError, match="no images found in .*trainB"):
        build_dataset(tiny(data=str(tmp_path)), "train", progress=lambda done, total: seen.append((done, total)))
    assert seen == []


@pytest.mark.parametrize("values", [dict(task="unpaired"), dict(task="unpaired", model="cyclegan")])
def test_a_hand_made_unpaired_config_is_pointed_to_cyclegan_config(values) -> None:
    """TrainConfig(task="unpaired", ...) as README's library example builds configs was refused without a word of
    cyclegan_config; getting past the refusals by hand (model cyclegan, an unconditional D) trained a U-Net with
    batch norm, dropout and the vanilla GAN: not CycleGAN's official defaults."""
    from pix2pix_core.config import TrainConfig

    with pytest.raises(Pix2PixError, match=r"cyclegan_config\(data=\.\.\., out=\.\.\.\)"):
        TrainConfig(**values).validate()


@pytest.mark.parametrize("layout, hint", [
    (["A", "B"], "it holds A/ and B/: paired data, for the paired task"),
    (["train/A", "train/B"], "it holds A/ and B/: paired data, for the paired task"),
    (["train", "val"], "it has train/: A|B pairs or photos, for the facades, aligned or colorize task"),
    (["horse2zebra/trainA", "horse2zebra/trainB"], "its sub-folder horse2zebra/ holds trainA/ and trainB/: give that"),
    (["train/trainA", "train/trainB"], "its sub-folder train/ holds trainA/ and trainB/: give that"),
    (["TrainA", "TrainB"], "folder names are case-sensitive: trainA/ and trainB/"),
])
def test_a_folder_not_laid_out_as_unpaired_data_says_what_it_holds(tmp_path, layout, hint) -> None:
    """A paired or aligned dataset, or unpaired collections one folder down, given as unpaired data got only
    "needs the folders trainA/ and trainB/: missing ..."."""
    for folder in layout:
        write_collection(tmp_path / folder, 1, (200, 60, 40), seed=1)
    with pytest.raises(Pix2PixError, match=re.escape(hint)):
        build_dataset(tiny(data=str(tmp_path)), "train")


def test_test_of_an_onnx_cyclegan_says_it_needs_both_generators(cyclegan_checkpoint, unpaired_dir, tmp_path,
                                                               capsys) -> None:
    """`test` read an ONNX CycleGAN's header as safetensors: "not a readable safetensors file (... header too
    large)", when the file is fine and holds one of the two generators `test` needs."""
    pytest.importorskip("onnxruntime")
    from pix2pix_core.export_formats import export_model

    for direction in ("AtoB", "BtoA"):
        onnx_file = export_model(cyclegan_checkpoint, tmp_path / f"{direction}.onnx", direction=direction)
        assert main(["test", "--checkpoint", str(onnx_file), "--data", str(unpaired_dir), "--out",
                     str(tmp_path / "report"), "--device", "cpu"]) == 2
        error = capsys.readouterr().err
        assert "holds one of the CycleGAN's two generators; test needs both" in error
        assert "safetensors file" not in error


def test_a_collection_in_sub_folders_is_not_sent_elsewhere(tmp_path) -> None:
    """trainA/horses/*.png was told "images are in its sub-folder horses/: give that folder as the data", and
    trainA/horses as the data has no trainA/ and trainB/."""
    write_collection(tmp_path / "trainA" / "horses", 2, (200, 60, 40), seed=1)
    write_collection(tmp_path / "trainB", 2, (40, 90, 210), seed=2)
    with pytest.raises(Pix2PixError, match=r"trainA \(its sub-folder horses/ holds images: put them in trainA/ "
                                           r"itself, sub-folders are not read\)$"):
        build_dataset(tiny(data=str(tmp_path)), "train")


def test_a_collection_of_unreadable_files_is_named(tmp_path) -> None:
    """A trainB/ whose every file was unreadable ended in "unpaired data needs pictures in both A and B"."""
    write_collection(tmp_path / "trainA", 2, (200, 60, 40), seed=1)
    (tmp_path / "trainB").mkdir()
    (tmp_path / "trainB" / "broken.jpg").write_bytes(b"not a picture")
    with pytest.raises(Pix2PixError, match=r"none of the 1 image\(s\) in .*trainB is usable: .*broken.jpg: "
                                           r"not an image"):
        build_dataset(tiny(data=str(tmp_path)), "train")


def test_train_help_names_the_unpaired_defaults(capsys) -> None:
    """`train --help` said "default unet_256", "default vanilla", "default batch" only: --task unpaired trains
    ResNet-9, LSGAN and instance norm (CYCLEGAN_DEFAULTS), and its dropout is off."""
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for words in ("(default unet_256; task unpaired: resnet_9blocks)", "default vanilla; task unpaired: lsgan",
                  "default batch; task unpaired: instance", "(task unpaired: always off)",
                  "task unpaired: AtoB only, a CycleGAN learns both ways"):
        assert words in text, words


def test_export_takes_the_generator_an_export_holds_and_refuses_the_other(cyclegan_checkpoint, tmp_path,
                                                                          capsys) -> None:
    """`export` defaulted to --direction AtoB: an F-only export exported again with that default stayed B -> A
    (the default could not be told from a request), and an explicit AtoB got B -> A with a warning, where
    `translate` refuses it. Now as translate: no direction takes the held generator, AtoB of F alone is refused."""
    from pix2pix_core.checkpoint import export_generator, read_header

    b_to_a = export_generator(cyclegan_checkpoint, tmp_path / "b_to_a.safetensors", direction="BtoA")
    assert main(["export", "--checkpoint", str(b_to_a), "--out", str(tmp_path / "again.safetensors")]) == 0
    assert read_header(tmp_path / "again.safetensors")["direction"] == "BtoA"
    for suffix in ("safetensors", "pt"):
        out = tmp_path / f"asked.{suffix}"
        assert main(["export", "--checkpoint", str(b_to_a), "--out", str(out), "--direction", "AtoB"]) == 2
        assert "B -> A generator only" in capsys.readouterr().err and not out.exists()
    assert main(["export", "--checkpoint", str(b_to_a), "--out", str(tmp_path / "f.pt")]) == 0
    assert "B -> A" in capsys.readouterr().out


def test_test_skips_an_unreadable_or_tiny_picture_with_a_warning(cyclegan_checkpoint, unpaired_dir, tmp_path,
                                                                 capsys) -> None:
    """An unreadable file in testB/ ended `test` with exit 2 after every A picture was translated (the pix2pix
    `test` skips such files with a warning), and a 1 x 1 picture in testA/ with a scikit-image traceback (SSIM's
    7 x 7 window). Both are skipped now, named in one warning line, and the others are scored."""
    data = tmp_path / "data"
    for name in ("testA", "testB"):
        for source in (unpaired_dir / name).iterdir():
            (data / name).mkdir(parents=True, exist_ok=True)
            (data / name / source.name).write_bytes(source.read_bytes())
    Image.new("RGB", (1, 1), (200, 10, 10)).save(data / "testA" / "dot.png")
    (data / "testB" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not a picture")
    out = tmp_path / "report"
    assert main(["test", "--checkpoint", str(cyclegan_checkpoint), "--data", str(data), "--out", str(out),
                 "--device", "cpu"]) == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert re.search(r"warning: skipped 1 unusable image\(s\): .*dot.png: 1x1, too small", err), err
    assert re.search(r"warning: skipped 1 unusable image\(s\): .*broken.png: ", err), err
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["count_A"], metrics["count_B"]) == (2, 2)


def test_test_keeps_small_copies_of_large_pictures_for_its_report(cyclegan_checkpoint, unpaired_dir, tmp_path):
    """A CycleGAN is tested at each picture's own size, and `test` held three full-size copies of each picture
    (input, translated, reconstructed) until the report was written: 100 phone photos needed about 11 GB. The
    scores are still computed at full size; the report's pictures are at most 512 px on their longest side."""
    from pix2pix_core.evaluate import REPORT_SIDE

    data = tmp_path / "data"
    (data / "testA").mkdir(parents=True)
    (data / "testB").symlink_to(unpaired_dir / "testB")
    Image.new("RGB", (900, 600), (200, 60, 40)).save(data / "testA" / "large.png")
    out = tmp_path / "report"
    assert main(["test", "--checkpoint", str(cyclegan_checkpoint), "--data", str(data), "--out", str(out),
                 "--device", "cpu"]) == 0
    shown = sorted((out / "images").rglob("*large*.png"))
    assert len(shown) == 3 and all(Image.open(p).size == (REPORT_SIDE, REPORT_SIDE * 2 // 3) for p in shown)
    assert json.loads((out / "metrics.json").read_text())["count_A"] == 1


def test_test_of_a_collection_without_a_usable_picture_names_them(cyclegan_checkpoint, unpaired_dir, tmp_path,
                                                                  capsys) -> None:
    data = tmp_path / "data"
    (data / "testA").mkdir(parents=True)
    (data / "testA" / "broken.jpg").write_bytes(b"not a picture")
    (data / "testB").symlink_to(unpaired_dir / "testB")
    out = tmp_path / "report"
    assert main(["test", "--checkpoint", str(cyclegan_checkpoint), "--data", str(data), "--out", str(out),
                 "--device", "cpu"]) == 2
    assert re.search(r"error: none of the 1 image\(s\) in .*testA is usable: .*broken.jpg: not an image",
                     capsys.readouterr().err)
    assert not out.exists()


@pytest.mark.parametrize("direction", ["btoa", "B2A", "both"])
def test_translator_load_refuses_a_direction_it_does_not_know(cyclegan_checkpoint, direction) -> None:
    """Translator.load(..., direction="btoa") (or "B2A", "both") loaded G without a word: B pictures came back as
    G's A -> B translations. Only AtoB, BtoA and None (the default) are directions."""
    from pix2pix_core.inference import Translator

    with pytest.raises(Pix2PixError, match=rf"^direction must be 'AtoB' or 'BtoA' \(or None\), got '{direction}'$"):
        Translator.load(cyclegan_checkpoint, device="cpu", direction=direction)


def test_an_exported_cyclegan_does_not_claim_batch_norm(cyclegan_checkpoint, tmp_path) -> None:
    """The ONNX and TorchScript metadata of a CycleGAN (instance norm, no batch norm layer) said
    "batch_norm": "running statistics", a mode of a layer the network does not have."""
    pytest.importorskip("onnx")
    import onnx
    from pix2pix_core.export_formats import export_model

    onnx_file = export_model(cyclegan_checkpoint, tmp_path / "g.onnx", direction="AtoB")
    props = {p.key: p.value for p in onnx.load(str(onnx_file), load_external_data=False).metadata_props}
    files = {"pix2pix_metadata.json": ""}
    torch.jit.load(str(export_model(cyclegan_checkpoint, tmp_path / "g.pt", "torchscript", "AtoB")), _extra_files=files)
    for meta in (props, json.loads(files["pix2pix_metadata.json"])):
        assert meta["batch_norm"] == "none (instance norm: each image's own statistics)"


@pytest.mark.parametrize("when", ["translating", "saving pictures"])
def test_test_cut_short_leaves_the_earlier_report_whole(cyclegan_checkpoint, unpaired_dir, tmp_path, monkeypatch,
                                                        when) -> None:
    """A CycleGAN `test` into a folder with an earlier report saved its pictures into images/ one by one under the
    names that page shows: cut short (a Ctrl-C, a crash), it left the earlier page showing its pictures. They are
    staged until the new page is written now: the earlier report stays byte for byte as it was."""
    from pix2pix_core.evaluate import evaluate_unpaired
    from pix2pix_core.inference import Translator

    out = tmp_path / "report"
    evaluate_unpaired(cyclegan_checkpoint, unpaired_dir, out, progress=False)
    earlier = {p: p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    other = tmp_path / "other"  # the same file names (0.png ...), other pictures
    write_collection(other / "testA", 2, (30, 200, 90), seed=5)
    write_collection(other / "testB", 2, (90, 30, 200), seed=6)
    owner, name, call = (Translator, "translate", 4) if when == "translating" else (Image.Image, "save", 2)
    original, calls = getattr(owner, name), []

    def cut_short(*args, **kwargs):  # the second A picture's translation, or the second picture saved
        calls.append(1)
        if len(calls) == call:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, cut_short)
    with pytest.raises(KeyboardInterrupt):
        evaluate_unpaired(cyclegan_checkpoint, other, out, progress=False)
    assert {p: p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()} == earlier


def test_the_training_images_warning_points_at_the_line_that_called(cyclegan_checkpoint, unpaired_dir,
                                                                   facades_checkpoint, facades_dir, tmp_path) -> None:
    """The warning that a split is the model's training folders named the line above the caller's (its caller's
    caller) when evaluate_unpaired was called directly; evaluate's, of a pix2pix or a CycleGAN, named the caller."""
    import inspect

    from pix2pix_core.evaluate import evaluate, evaluate_unpaired

    same = tmp_path / "same"  # valA/ and valB/: the training folders under other names
    same.mkdir()
    for side in "AB":
        (same / f"val{side}").symlink_to(unpaired_dir / f"train{side}")
    calls = [(evaluate_unpaired, cyclegan_checkpoint, same, {"split": "val"}),
             (evaluate, cyclegan_checkpoint, same, {}),
             (evaluate, facades_checkpoint, facades_dir / "train", {"segmenter": False})]
    for index, (run, checkpoint, data, options) in enumerate(calls):
        with pytest.warns(UserWarning, match="this model trained on") as caught:
            line = inspect.currentframe().f_lineno + 1
            run(checkpoint, data, tmp_path / str(index), limit=1, progress=False, **options)
        assert [(Path(w.filename), w.lineno) for w in caught] == [(Path(__file__), line)], (run.__name__, index)
