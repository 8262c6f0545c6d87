"""colour_loss classification (Zhang, Isola, Efros 2016): the ab bins, soft encoding, annealed mean,
class rebalancing, and a tiny colorize run through training, resume, Translator and export."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from kornia.color import rgb_to_lab
from PIL import Image
from safetensors.torch import load_file

from conftest import tiny_config
from pix2pix_core import colour_bins
from pix2pix_core.checkpoint import export_generator, load_generator, read_checkpoint
from pix2pix_core.cli import _config_from_args, build_parser
from pix2pix_core.color import AB_SCALE
from pix2pix_core.config import TrainConfig
from pix2pix_core.errors import Pix2PixError
from pix2pix_core.inference import Translator
from pix2pix_core.networks import ColourClassifier, build_generator, guided_upsample
from pix2pix_core.pix2pix_model import Pix2Pix
from pix2pix_core.train import LossEvent, Trainer, resume_config


# ------------------------------------------------------------------------------------------ the bins
def test_bin_set_is_the_srgb_gamut_on_a_10_grid():
    centres = colour_bins.bin_centres()
    q = colour_bins.bin_count()
    # the paper keeps 313 with a looser test; the 8-bit sRGB gamut covers 261 cells (see colour_bins)
    assert 250 <= q <= 330 and centres.shape == (q, 2)
    assert torch.equal(centres, torch.round(centres / 10) * 10)  # centred on multiples of 10
    assert len({tuple(c) for c in centres.tolist()}) == q
    assert [0.0, 0.0] in centres.tolist()  # the neutral (gray) bin
    # sRGB spans a in about [-86, 98] and b in [-108, 94]: the grid's outermost cells, as the paper's hull
    assert centres.min(0).values.tolist() == [-90.0, -110.0] and centres.max(0).values.tolist() == [100.0, 90.0]


def test_every_srgb_colour_falls_in_a_kept_bin_and_far_cells_are_dropped():
    rng = np.random.default_rng(0)
    rgb = torch.from_numpy(rng.integers(0, 256, (3, 200, 200)).astype(np.float32) / 255.0)
    rgb[:, 0, :8] = torch.eye(3).repeat(1, 3)[:, :8]  # the primaries and secondaries, the gamut's corners
    ab = rgb_to_lab(rgb)[1:][None]  # the data pipeline's Lab (kornia)
    nearest = colour_bins.bin_centres()[colour_bins.nearest_bin(ab)]  # (1, H, W, 2)
    assert (nearest.permute(0, 3, 1, 2) - ab).abs().max() <= 5.0 + 1e-3  # each colour's own cell is kept
    kept = {tuple(c) for c in colour_bins.bin_centres().tolist()}
    assert (90.0, 90.0) not in kept and (-90.0, -110.0) not in kept  # no sRGB colour is that vivid there


def test_soft_encoding_sums_to_one_and_weighs_the_nearest_bin_most():
    centres = colour_bins.bin_centres()
    rng = np.random.default_rng(1)
    rgb = torch.from_numpy(rng.uniform(0, 1, (2, 3, 16, 16)).astype(np.float32))
    ab = rgb_to_lab(rgb)[:, 1:]
    indices, weights = colour_bins.soft_encode(ab, centres, chunk=100)
    assert indices.shape == weights.shape == (2, colour_bins.NEIGHBOURS, 16, 16)
    assert torch.allclose(weights.sum(1), torch.ones(2, 16, 16), atol=1e-6)
    assert (weights[:, :1] >= weights[:, 1:]).all()
    assert torch.equal(indices[:, 0], colour_bins.nearest_bin(ab))  # the nearest bin carries the most weight
    assert (indices.sort(1).values.diff(dim=1) > 0).all()  # 5 different bins
    # a pixel exactly on an interior bin: itself and its 4 neighbours at distance 10, Gaussian sigma 5
    index, weight = colour_bins.soft_encode(torch.zeros(1, 2, 1, 1), centres)
    assert centres[index[0, 0, 0, 0]].tolist() == [0.0, 0.0]
    side = math.exp(-100 / (2 * 5 ** 2))
    expected = torch.tensor([1, side, side, side, side]) / (1 + 4 * side)
    assert torch.allclose(weight.flatten(), expected, atol=1e-6)


def test_annealed_mean_of_a_one_hot_logit_is_that_bin_at_low_temperature():
    centres = colour_bins.bin_centres()
    logits = torch.zeros(1, len(centres), 2, 3)
    picked = 17
    logits[:, picked] = 1.0
    sharp = colour_bins.annealed_mean(logits, centres, 0.01)
    assert torch.allclose(sharp, centres[picked].view(1, 2, 1, 1).expand(1, 2, 2, 3), atol=1e-3)
    mean = colour_bins.annealed_mean(torch.zeros_like(logits), centres, 1.0)  # uniform: the mean of the bins
    assert torch.allclose(mean[0, :, 0, 0], centres.mean(0), atol=1e-4)
    softer = colour_bins.annealed_mean(logits, centres, 1.0)  # T = 1: pulled towards that mean
    assert (softer - mean).abs().max() < (sharp - mean).abs().max()


def test_rebalancing_weights_have_expectation_one_and_favour_rare_bins():
    centres = colour_bins.bin_centres()
    q = len(centres)
    neutral = centres.tolist().index([0.0, 0.0])
    vivid = centres.tolist().index([60.0, 60.0])
    p = torch.full((q,), 0.2 / (q - 1), dtype=torch.float64)
    p[neutral] = 0.8  # mostly gray pixels, as in real photos
    w = colour_bins.rebalancing_weights(p, centres)
    assert torch.isclose((p * w.double()).sum(), torch.tensor(1.0, dtype=torch.float64), atol=1e-6)
    assert w[vivid] > 5 * w[neutral]
    assert torch.isclose(colour_bins.smooth(p, centres).sum(), torch.tensor(1.0, dtype=torch.float64))
    # the weight is 1 / ((1 - 0.5) smooth(p) + 0.5 / Q), up to the normalisation
    raw = 1 / (0.5 * colour_bins.smooth(p, centres) + 0.5 / q)
    assert torch.allclose(w.double() / w[vivid].double(), raw / raw[vivid], rtol=1e-5)


def test_prior_counts_nearest_bins():
    ab = torch.zeros(2, 4, 4)
    ab[:, :, :1] = torch.tensor([20.0, -30.0]).view(2, 1, 1) / AB_SCALE  # a quarter of the pixels
    p = colour_bins.colour_prior([ab])
    centres = colour_bins.bin_centres().tolist()
    assert math.isclose(p[centres.index([0.0, 0.0])].item(), 0.75)
    assert math.isclose(p[centres.index([20.0, -30.0])].item(), 0.25)


def test_dataset_prior_counts_the_cells_the_loss_sees():
    """Two colours alternating pixel by pixel: at full resolution two bins; averaged over 2 x 2 cells (the
    logits' grid of a stride-2 head), only their mean, as the loss's target."""
    ab = torch.zeros(2, 4, 4)
    ab[:, ::2, :] = torch.tensor([40.0, 20.0]).view(2, 1, 1) / AB_SCALE
    dataset = [{"target": ab}] * 3
    centres = colour_bins.bin_centres().tolist()
    full = colour_bins.dataset_prior(dataset)
    assert math.isclose(full[centres.index([40.0, 20.0])].item(), 0.5)
    cells = colour_bins.dataset_prior(dataset, cell=2)
    assert math.isclose(cells[centres.index([20.0, 10.0])].item(), 1.0)


# ------------------------------------------------------------------------------------------ the generator
def test_classifier_generator_exposes_logits_and_returns_normalised_ab():
    config = tiny_config(task="colorize", colour_loss="classification")
    generator = build_generator(config).eval()
    assert isinstance(generator, ColourClassifier) and "centres" in generator.state_dict()
    lightness = torch.rand(2, 1, 128, 128) * 2 - 1
    with torch.no_grad():
        logits = generator.logits(lightness)
        ab, same_logits = generator(lightness, with_logits=True)
        assert logits.shape == (2, colour_bins.bin_count(), 32, 32)  # bins at 1/4 of the resolution
        assert torch.equal(logits, same_logits) and torch.equal(ab, generator(lightness))
        expected = torch.nn.functional.interpolate(colour_bins.annealed_mean(logits, colour_bins.bin_centres(), 0.38)
                                                   / AB_SCALE, size=(128, 128), mode="bilinear", align_corners=False)
    assert ab.shape == (2, 2, 128, 128) and torch.allclose(ab, expected, atol=1e-6)
    assert ab.abs().max() <= 1.0
    plain = build_generator(tiny_config(task="colorize"))
    assert not isinstance(plain, ColourClassifier)


def test_guided_upsample_keeps_flat_colour_and_follows_the_lightness_edge():
    """A colour edge that sits on a lightness edge between two 4 x 4 cells' centres: bilinear smears it over
    the cells, the lightness-guided upsampling puts it back on the edge."""
    guide = torch.full((1, 1, 32, 32), -0.6)
    guide[..., 13:] = 0.6  # the edge at column 13, inside the 4-pixel cell 12-15
    truth = torch.zeros(1, 2, 32, 32)
    truth[:, 0, :, 13:] = 0.5
    truth[:, 1, :, :13] = -0.4
    low = torch.nn.functional.avg_pool2d(truth, 4)
    guided = guided_upsample(low, guide, 4)
    bilinear = torch.nn.functional.interpolate(low, size=(32, 32), mode="bilinear", align_corners=False)
    assert guided.shape == truth.shape
    assert (guided - truth).abs().mean() < 0.25 * (bilinear - truth).abs().mean()
    flat = torch.full((1, 2, 8, 8), 0.3)
    assert torch.allclose(guided_upsample(flat, torch.rand(1, 1, 32, 32) * 2 - 1, 4), torch.full((1, 2, 32, 32), 0.3),
                          atol=1e-5)
    low.requires_grad_(True)
    guided_upsample(low, guide, 4).sum().backward()
    assert torch.isfinite(low.grad).all() and low.grad.abs().sum() > 0


def test_guided_classifier_trains_and_exports(food_dir, tmp_path):
    config = _config(food_dir, tmp_path / "guided", colour_upsample="guided", batch_size=1, max_steps=2)
    result = Trainer(config).run()
    assert (result.reason, result.step) == ("max_steps", 2)
    generator, loaded, _ = load_generator(result.checkpoint)
    assert loaded.colour_upsample == "guided" and generator.guided
    lightness = torch.rand(1, 1, 128, 128) * 2 - 1
    with torch.no_grad():
        generator.eval()
        expected = guided_upsample(generator.readout(generator.logits(lightness)), lightness, 4)
        assert torch.allclose(generator(lightness), expected)
    pytest.importorskip("onnxruntime")
    from pix2pix_core.export_formats import OnnxGenerator, export_model

    session = OnnxGenerator(export_model(result.checkpoint, tmp_path / "g.onnx", "onnx"))
    # the filter divides by the local lightness variance, which amplifies float rounding: 1e-3 is 0.1 Lab units
    assert (session(lightness) - expected).abs().max() < 1e-3


def test_config_and_cli(tmp_path):
    with pytest.raises(Pix2PixError, match="task colorize"):
        TrainConfig(task="facades", colour_loss="classification").validate()
    for bad in (dict(colour_loss="softmax"), dict(colour_loss="classification", lambda_class=0.0),
                dict(colour_temperature=0.0), dict(colour_temperature=1.5), dict(lambda_class=float("nan")),
                dict(colour_upsample="nearest", colour_loss="classification"), dict(colour_upsample="guided")):
        with pytest.raises(Pix2PixError):
            TrainConfig(task="colorize", **bad).validate()
    # L1 off and no GAN: the cross-entropy alone still has something to learn
    TrainConfig(task="colorize", colour_loss="classification", lambda_l1=0.0, use_gan=False).validate()
    args = build_parser().parse_args(["train", "--task", "colorize", "--data", str(tmp_path), "--out", str(tmp_path / "r"),
                                      "--colour-loss", "classification", "--lambda-class", "2",
                                      "--colour-temperature", "0.5", "--colour-upsample", "guided"])
    config = _config_from_args(args)
    assert (config.colour_loss, config.lambda_class, config.colour_temperature) == ("classification", 2.0, 0.5)
    assert config.colour_upsample == "guided"
    default = _config_from_args(build_parser().parse_args(["train", "--task", "colorize", "--data", str(tmp_path),
                                                           "--out", str(tmp_path / "r")]))
    assert (default.colour_loss, default.lambda_class, default.colour_temperature, default.colour_upsample) == (
        "l1", 1.0, 0.38, "bilinear")


def test_a_step_without_the_prior_is_a_clear_error():
    model = Pix2Pix(tiny_config(task="colorize", colour_loss="classification"))
    batch = {"input": torch.zeros(1, 1, 128, 128), "target": torch.zeros(1, 2, 128, 128)}
    with pytest.raises(Pix2PixError, match="prepare"):
        model.train_step(batch)


# ------------------------------------------------------------------------------------------ a tiny run
def _config(food_dir, out, **overrides):
    values = dict(task="colorize", data=str(food_dir), out=str(out), colour_loss="classification", lambda_l1=10.0)
    values.update(overrides)
    return tiny_config(**values)


@pytest.fixture(scope="module")
def classification_run(tmp_path_factory, food_dir):
    out = tmp_path_factory.mktemp("food_classification")
    losses = []
    config = _config(food_dir, out, batch_size=1, max_steps=4)
    result = Trainer(config, callbacks=[lambda e: isinstance(e, LossEvent) and losses.append(e.losses)]).run()
    return result, losses


def test_training_gives_finite_losses_and_keeps_the_prior(classification_run):
    result, losses = classification_run
    assert (result.reason, result.step) == ("max_steps", 4) and len(losses) == 4
    assert all(math.isfinite(v) for step in losses for v in step.values())
    assert all(step["G_class"] > 0 and step["G_L1"] > 0 and step["G_GAN"] > 0 for step in losses)
    tensors, _ = read_checkpoint(result.checkpoint)
    prior = tensors[Pix2Pix.PRIOR_KEY]
    assert prior.shape == (colour_bins.bin_count(),) and math.isclose(prior.sum().item(), 1.0, rel_tol=1e-9)
    assert (prior > 0).sum() > 10  # the colourful synthetic photos spread over many bins
    assert torch.equal(tensors["G.centres"], colour_bins.bin_centres())
    header = (result.checkpoint.parent.parent / "losses.csv").read_text().splitlines()[0]
    assert header.split(",")[2:8] == ["G_GAN", "G_L1", "D_real", "D_fake", "G_feat", "G_class"]


def test_translator_colorizes_with_the_checkpoint(classification_run, food_dir):
    result, _ = classification_run
    translator = Translator.load(result.checkpoint, device="cpu")
    assert isinstance(translator.generator, ColourClassifier)
    photo = Image.open(sorted((food_dir / "val").iterdir())[0]).resize((90, 70))
    colour = translator.translate(photo)
    assert colour.size == (90, 70)
    pixels = np.asarray(colour, dtype=np.int16)
    assert (pixels.max(-1) - pixels.min(-1)).max() > 0  # some colour, not the gray input


def test_export_safetensors_onnx_and_torchscript(classification_run, tmp_path):
    result, _ = classification_run
    shipped = export_generator(result.checkpoint, tmp_path / "g.safetensors")
    assert Pix2Pix.PRIOR_KEY not in load_file(str(shipped))  # a training statistic, not part of the model
    generator, config, _ = load_generator(shipped)
    assert isinstance(generator, ColourClassifier) and config.colour_loss == "classification"
    reference, _, _ = load_generator(result.checkpoint)
    lightness = torch.rand(1, 1, 128, 128) * 2 - 1
    with torch.no_grad():
        ab, expected = generator.eval()(lightness), reference.eval()(lightness)
    assert (ab - expected).abs().max() < 0.02  # fp16 weights
    from pix2pix_core.export_formats import export_model, inference_network

    net = inference_network(reference, config)
    with torch.no_grad():
        wanted = net(lightness)
        path = export_model(result.checkpoint, tmp_path / "g.pt", "torchscript")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load is marked deprecated
            traced = torch.jit.load(str(path))
        assert torch.allclose(traced(lightness), wanted, atol=1e-5)
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from pix2pix_core.export_formats import OnnxGenerator

    session = OnnxGenerator(export_model(result.checkpoint, tmp_path / "g.onnx", "onnx"))
    assert session.config.colour_loss == "classification"
    assert (session(lightness) - wanted).abs().max() < 1e-4


def test_stop_and_resume_is_exact_and_reuses_the_stored_prior(food_dir, tmp_path, monkeypatch):
    base = dict(max_steps=6, epochs=3, epochs_decay=1, batch_size=2)  # 3 batches per epoch
    straight = Trainer(_config(food_dir, tmp_path / "straight", **base)).run()
    assert (straight.reason, straight.step) == ("max_steps", 6)

    trainer = Trainer(_config(food_dir, tmp_path / "resumed", **base))
    trainer.callbacks.append(lambda e: trainer.stop() if isinstance(e, LossEvent) and e.step == 2 else None)
    assert trainer.run().step == 2

    def recompute(*args, **kwargs):
        raise AssertionError("the prior is stored in the checkpoint; resume must not recompute it")

    monkeypatch.setattr(colour_bins, "dataset_prior", recompute)
    second = Trainer(resume_config(tmp_path / "resumed"), resume=True).run()
    assert (second.reason, second.step) == ("max_steps", 6)
    a, b = load_file(str(straight.checkpoint)), load_file(str(second.checkpoint))
    assert a.keys() == b.keys() and Pix2Pix.PRIOR_KEY in a
    different = [k for k in a if not torch.equal(a[k], b[k])]  # weights, Adam moments, prior and RNG
    assert not different, different[:5]


def test_resume_and_fine_tune_refuse_another_colour_loss(classification_run, colorize_checkpoint, food_dir, tmp_path):
    result, _ = classification_run
    with pytest.raises(Pix2PixError, match="colour_loss"):
        Trainer(resume_config(result.checkpoint.parent.parent, {"colour_loss": "l1", "max_steps": 5}),
                resume=True).run()
    with pytest.raises(Pix2PixError, match="colour_loss"):
        Trainer(_config(food_dir, tmp_path / "tune", max_steps=1), init_generator=colorize_checkpoint).run()


def test_memory_estimate_counts_the_bin_logits():
    from pix2pix_core.resources import estimate_training_memory

    plain = estimate_training_memory(tiny_config(task="colorize"), 10)
    classifier = estimate_training_memory(tiny_config(task="colorize", colour_loss="classification"), 10)
    # batch 2 x 261 bins x 32 x 32 (1/4 of 128 px): the logits, the readout's softmax and the loss's log-softmax
    assert classifier.activations - plain.activations >= 3 * 2 * colour_bins.bin_count() * 32 * 32 * 4


# ------------------------------------------------------------------------------- rebalanced L1 (regression)
def test_pixel_weights_favour_rare_true_colours():
    """A prior where gray is common and saturated blue rare: blue pixels weigh more, gray ones less than 1."""
    centres = colour_bins.bin_centres()
    gray = torch.zeros(1, 2, 4, 4)
    blue = torch.zeros(1, 2, 4, 4)
    blue[:, 1] = -40.0 / AB_SCALE
    prior = colour_bins.colour_prior([gray] * 99 + [blue])
    weights = colour_bins.rebalancing_weights(prior, centres)
    image = torch.cat([gray[..., :2], blue[..., 2:]], dim=-1)
    per_pixel = colour_bins.pixel_weights(image, weights)
    assert per_pixel.shape == (1, 4, 4) and not per_pixel.requires_grad
    assert per_pixel[..., 2:].min() > 5 * per_pixel[..., :2].max()
    assert per_pixel[..., :2].max() < 1.0
    mixed = colour_bins.pixel_weights(torch.cat([gray] * 99 + [blue]), weights)
    assert math.isclose(mixed.mean().item(), 1.0, rel_tol=0.02)  # the prior's average pixel weighs 1


def test_rebalanced_l1_weighs_each_pixel_by_its_bin():
    """The same seed and batch: every bin weighted 1 gives the plain L1's G_L1, every bin weighted 2 twice it."""
    batch = {"input": torch.rand(2, 1, 128, 128) * 2 - 1, "target": (torch.rand(2, 2, 128, 128) - 0.5) * 0.6}

    def g_l1(loss: str, weight: float = 1.0) -> float:
        torch.manual_seed(0)
        model = Pix2Pix(tiny_config(task="colorize", colour_loss=loss))
        if loss == "l1_rebalanced":
            model.class_weights = torch.full((colour_bins.bin_count(),), weight)
        torch.manual_seed(1)
        return model.train_step(batch)["G_L1"].item()

    plain = g_l1("l1")
    assert plain > 0 and math.isclose(g_l1("l1_rebalanced", 1.0), plain, rel_tol=1e-5)
    assert math.isclose(g_l1("l1_rebalanced", 2.0), 2 * plain, rel_tol=1e-5)


def test_rebalanced_l1_trains_keeps_its_prior_and_fine_tunes_an_l1_model(food_dir, colorize_checkpoint, tmp_path):
    """It changes the loss, not G: an L1 model can be fine-tuned with it, and the result colorizes as any."""
    config = _config(food_dir, tmp_path / "run", colour_loss="l1_rebalanced", batch_size=2, max_steps=3)
    result = Trainer(config, init_generator=colorize_checkpoint).run()
    assert (result.reason, result.step) == ("max_steps", 3)
    tensors, _ = read_checkpoint(result.checkpoint)
    assert math.isclose(tensors[Pix2Pix.PRIOR_KEY].sum().item(), 1.0, rel_tol=1e-9)
    header = (tmp_path / "run" / "losses.csv").read_text().splitlines()[0]
    assert "G_class" not in header
    photo = Image.new("RGB", (64, 48), (120, 120, 120))
    assert Translator.load(result.checkpoint, device="cpu").translate(photo).size == (64, 48)


def test_a_rebalanced_step_without_the_prior_is_a_clear_error():
    model = Pix2Pix(tiny_config(task="colorize", colour_loss="l1_rebalanced"))
    batch = {"input": torch.zeros(1, 1, 128, 128), "target": torch.zeros(1, 2, 128, 128)}
    with pytest.raises(Pix2PixError, match="l1_rebalanced needs the training set's colour prior"):
        model.train_step(batch)
