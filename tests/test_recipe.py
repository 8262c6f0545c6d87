"""The opt-in recipe options: multi-scale D + feature matching, spectral norm, hinge, EMA, DiffAugment, warps."""

import pytest
import torch

from conftest import tiny_config
from pix2pix_core.augment import cutout, diff_augment, translation, warp_label_map
from pix2pix_core.checkpoint import export_generator, load_generator, read_checkpoint
from pix2pix_core.cli import build_parser, main, _config_from_args
from pix2pix_core.config import RECIPES, TrainConfig
from pix2pix_core.errors import Pix2PixError
from pix2pix_core.losses import GANLoss, feature_matching_loss
from pix2pix_core.networks import MultiscaleDiscriminator, build_discriminator
from pix2pix_core.palette import palette_array
from pix2pix_core.train import LossEvent, Trainer


def test_hinge_loss_on_known_logits():
    loss = GANLoss("hinge")
    logits = torch.tensor([-2.0, 0.0, 0.5, 3.0])
    assert loss(logits, True).item() == pytest.approx((3 + 1 + 0.5 + 0) / 4)  # mean max(0, 1 - x)
    assert loss(logits, False).item() == pytest.approx((0 + 1 + 1.5 + 4) / 4)  # mean max(0, 1 + x)
    assert loss(logits, True, for_discriminator=False).item() == pytest.approx(-1.5 / 4)  # G: -mean(x)


def test_losses_average_over_scales():
    loss = GANLoss("lsgan")
    ones, zeros = torch.ones(1, 1, 4, 4), torch.zeros(1, 1, 2, 2)
    assert loss([ones, zeros], True).item() == pytest.approx(0.5)  # 0 on the first scale, 1 on the second


def test_feature_matching_is_zero_for_equal_features_and_weighted_as_pix2pixhd():
    real = [[torch.ones(1, 2, 4, 4), torch.ones(1, 2, 2, 2), torch.zeros(1, 1, 1, 1)]]
    assert feature_matching_loss(real, real).item() == 0.0
    fake = [[torch.zeros(1, 2, 4, 4), torch.ones(1, 2, 2, 2), torch.ones(1, 1, 1, 1)]]  # logits are ignored
    assert feature_matching_loss(fake, real).item() == pytest.approx(4 * (1 + 0) / 2)  # 4 / L per hidden layer


def test_multiscale_spectral_norm_discriminator():
    config = TrainConfig(num_D=3, spectral_norm=True, ndf=8)
    net = build_discriminator(config)
    assert isinstance(net, MultiscaleDiscriminator) and len(net.scales) == 3
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
    assert any(hasattr(m, "parametrizations") for m in net.modules())
    pair = torch.randn(2, 6, 128, 128)
    net.eval()  # in training mode each forward takes a power-iteration step of the spectral norm
    outputs = net(pair)
    assert [o.shape[-1] for o in outputs] == [14, 6, 2]  # 70x70 patches at full, 1/2 and 1/4 resolution
    features = net(pair, features=True)
    assert len(features) == 3 and all(len(f) == 5 for f in features)  # 4 hidden activations + logits
    assert torch.equal(features[0][-1], outputs[0])


def test_config_refuses_impossible_option_combinations():
    for bad in (dict(num_D=2, netD="pixel"), dict(lambda_feat=10.0, netD="image"), dict(ema_decay=1.0),
                dict(diff_augment="translation,colour"), dict(num_D=0), dict(label_warp=-1.0)):
        with pytest.raises(Pix2PixError):
            TrainConfig(**bad).validate()


def test_translation_moves_both_images_of_a_pair_together():
    torch.manual_seed(0)
    image = torch.rand(4, 3, 16, 16)
    pair = torch.cat([image, image], 1)  # the same picture as "label map" and "photo"
    for augment in (translation, cutout):
        shifted = augment(pair)
        assert shifted.shape == pair.shape and torch.equal(shifted[:, :3], shifted[:, 3:])
    assert not torch.equal(translation(pair), pair)  # with 4 images, some shift is non-zero
    holes = (cutout(torch.ones(8, 1, 16, 16)) == 0).float().mean((1, 2, 3))
    assert torch.all(holes > 0.1) and torch.all(holes <= 0.25 + 1e-6)  # a half-size square, clipped at borders


def test_diff_augment_passes_gradients():
    image = torch.rand(2, 3, 16, 16, requires_grad=True)
    diff_augment(image, ("translation", "cutout")).sum().backward()
    assert image.grad is not None and image.grad.abs().sum() > 0


def test_label_warp_keeps_palette_colours_and_moves_edges_a_little():
    ids = torch.zeros(1, 64, 64, dtype=torch.long)
    ids[:, 16:48, 16:48] = 2
    colours = torch.from_numpy(palette_array()).float() / 127.5 - 1
    labels = colours[ids].permute(0, 3, 1, 2)
    torch.manual_seed(0)
    warped = warp_label_map(labels, pixels=3.0)
    present = {tuple(c) for c in warped[0].permute(1, 2, 0).reshape(-1, 3).tolist()}
    assert present <= {tuple(c) for c in colours.tolist()}
    changed = (warped != labels).any(1)[0]
    assert changed.any() and not changed[:12].any() and not changed[28:36, 28:36].any()  # only near the edges


def _train(facades_dir, tmp_path, **overrides):
    config = tiny_config(task="facades", data=str(facades_dir), out=str(tmp_path), max_steps=3, **overrides)
    losses = []
    result = Trainer(config, callbacks=[lambda e: isinstance(e, LossEvent) and losses.append(e.losses)]).run()
    return result, losses


@pytest.mark.parametrize("name", ["pix2pixhd_like", "others"])
def test_options_train_together_with_finite_losses(facades_dir, tmp_path, name):
    overrides = dict(num_D=2, lambda_feat=10.0, gan_mode="hinge", spectral_norm=True, ema_decay=0.999,
                     diff_augment="translation,cutout") if name == "pix2pixhd_like" else dict(
        num_D=2, lambda_feat=10.0, gan_mode="lsgan", label_warp=2.0, diff_augment="cutout", conditional_D=False)
    result, losses = _train(facades_dir, tmp_path, **overrides)
    assert result.step == 3 and all(torch.isfinite(torch.tensor(list(l.values()))).all() for l in losses)
    assert all(l["G_feat"] > 0 for l in losses)


def test_ema_weights_are_saved_exported_and_used_for_inference(facades_dir, tmp_path):
    result, _ = _train(facades_dir, tmp_path, ema_decay=0.9)
    tensors, _ = read_checkpoint(result.checkpoint)
    averaged = {k[2:]: v for k, v in tensors.items() if k.startswith("E.")}
    live = {k[2:]: v for k, v in tensors.items() if k.startswith("G.")}
    assert averaged.keys() == live.keys()
    assert any(not torch.equal(averaged[k], live[k]) for k in averaged if averaged[k].is_floating_point())
    generator, _, _ = load_generator(result.checkpoint)
    key = next(k for k in averaged if k.endswith("weight"))
    assert torch.equal(generator.state_dict()[key], averaged[key].float())
    exported, meta = read_checkpoint(export_generator(result.checkpoint, tmp_path / "g.safetensors"))
    assert torch.equal(exported[f"G.{key}"], averaged[key].half()) and meta["generator_weights"] == "averaged"
    # The same run's trained G, for comparing the two: chosen on load and on export, and recorded.
    trained, _, _ = load_generator(result.checkpoint, weights="trained")
    assert torch.equal(trained.state_dict()[key], live[key].float())
    path = tmp_path / "trained.safetensors"
    main(["export", "--checkpoint", str(result.checkpoint), "--out", str(path), "--weights", "trained"])
    exported, meta = read_checkpoint(path)
    assert torch.equal(exported[f"G.{key}"], live[key].half()) and meta["generator_weights"] == "trained"
    with pytest.raises(Pix2PixError, match="weights must be one of"):
        load_generator(result.checkpoint, weights="ema")


def test_ema_resume_continues_the_average(facades_dir, tmp_path):
    config = tiny_config(task="facades", data=str(facades_dir), out=str(tmp_path), epochs=2, ema_decay=0.9)
    straight = Trainer(config).run()
    reference, _ = read_checkpoint(straight.checkpoint)
    out = tmp_path / "resumed"
    first = tiny_config(task="facades", data=str(facades_dir), out=str(out), epochs=2, ema_decay=0.9)
    trainer = Trainer(first, callbacks=[lambda e: isinstance(e, LossEvent) and e.step == 3 and trainer.stop()])
    trainer.run()
    resumed, _ = read_checkpoint(Trainer(first, resume=True).run().checkpoint)
    averaged = [k for k in reference if k.startswith("E.")]
    assert averaged and set(averaged) == {k for k in resumed if k.startswith("E.")}
    for key in averaged:
        assert torch.allclose(reference[key], resumed[key], atol=1e-6), key


def test_cli_recipe_sets_the_options_and_explicit_flags_win(tmp_path):
    parser = build_parser()

    def config(*flags):
        return _config_from_args(parser.parse_args(["train", "--data", str(tmp_path), "--out", str(tmp_path / "r"), *flags]))

    studio = config("--recipe", "studio", "--lambda-l1", "25")
    assert all(getattr(studio, key) == value for key, value in RECIPES["studio"].items()) and studio.lambda_l1 == 25
    assert config("--recipe", "paper") == config("--recipe", "paper", "--task", "facades")
    paper = config("--recipe", "paper")
    assert (paper.conditional_D, paper.num_D, paper.lambda_feat, paper.ema_decay, paper.gan_mode) == (True, 1, 0, 0, "vanilla")
    assert config().conditional_D is False  # facades default to the studio recipe, the shipped model's
    assert config("--task", "colorize").conditional_D is True  # other tasks keep the paper's
