"""The realism metrics: KID, the classifier two-sample test, segmenter features, and their `test` keys."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from pix2pix_core.evaluate import evaluate, format_metrics
from pix2pix_core.realism import encoder_levels, kid, photo_features, realism_metrics, two_sample_accuracy
from pix2pix_core.segment import Segmenter, SegmenterConfig, build_segmenter

REALISM_KEYS = {"kid_x1000", "kid_x1000_std", "two_sample_acc", "two_sample_acc_seeds"}
FLOOR_KEYS = {f"{key}_floor" for key in REALISM_KEYS}


def random_segmenter(ngf: int = 4, num_downs: int = 6, crop_size: int = 64) -> Segmenter:
    torch.manual_seed(0)
    config = SegmenterConfig(ngf=ngf, num_downs=num_downs, crop_size=crop_size, load_size=crop_size, precision="fp32")
    return Segmenter(build_segmenter(config), config, "cpu")


def random_photos(count: int, size: int = 48, seed: int = 0, offset: float = 0.0) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    return [Image.fromarray(np.clip(rng.normal(128 + offset, 40, (size, size, 3)), 0, 255).astype(np.uint8), "RGB")
            for _ in range(count)]


# ---------------------------------------------------------------------------------------------- statistics
def test_kid_is_about_zero_for_one_distribution_and_clearly_positive_for_a_shifted_one():
    rng = np.random.default_rng(0)
    x, y = rng.normal(0, 1, (300, 16)), rng.normal(0, 1, (300, 16))
    same, same_std = kid(x, y, subsets=50, subset_size=100)
    shifted, _ = kid(x, y + 0.5, subsets=50, subset_size=100)
    assert same_std > 0  # subsets smaller than the sets differ
    assert abs(same) < 0.02 and shifted > 0.1 and shifted > 20 * abs(same)
    assert kid(x, y, subsets=50, subset_size=100) == (same, same_std)  # seeded


def test_kid_of_small_sets_uses_them_whole():
    rng = np.random.default_rng(1)
    x, y = rng.normal(0, 1, (26, 8)), rng.normal(0, 1, (26, 8))
    value, std = kid(x, y)
    assert std == 0.0 and math.isfinite(value)
    assert kid(x, y + 1.0)[0] > 0.5 > abs(value)
    with pytest.raises(ValueError, match="at least 2"):
        kid(x[:1], y)


def test_two_sample_accuracy_is_chance_for_one_distribution_and_one_for_different_ones():
    rng = np.random.default_rng(2)
    x, y = rng.normal(0, 1, (100, 10)), rng.normal(0, 1, (140, 10))
    assert 0.35 <= two_sample_accuracy(x, y, seed=0) <= 0.65
    assert two_sample_accuracy(x, y + 2.0, seed=0) >= 0.95
    assert two_sample_accuracy(x, y, seed=3) == two_sample_accuracy(x, y, seed=3)
    # fewer samples than folds: k drops to the class size
    assert 0.0 <= two_sample_accuracy(x[:3], y[:3] + 5.0) <= 1.0


def test_paired_two_sample_test_keeps_each_generated_photo_with_its_own_real_photo():
    """A generated photo and the real photo it was made from look alike: with the pair split across folds
    the classifier learns one as generated and calls its twin generated too, so the accuracy reads low."""
    rng = np.random.default_rng(0)
    real = rng.normal(size=(20, 30))
    # identical sets: pairs kept together are predicted alike, exactly one of each pair right
    assert [two_sample_accuracy(real.copy(), real, seed=s, paired=True) for s in range(4)] == [0.5] * 4
    assert two_sample_accuracy(real.copy(), real, seed=0) < 0.3  # split pairs: far below chance
    real = rng.normal(size=(40, 8))
    look_alikes = real + rng.normal(size=real.shape) * 0.3
    paired = np.mean([two_sample_accuracy(look_alikes, real, seed=s, paired=True) for s in range(10)])
    unpaired = np.mean([two_sample_accuracy(look_alikes, real, seed=s) for s in range(10)])
    assert paired > 0.4 > unpaired
    with pytest.raises(ValueError, match="same length"):
        two_sample_accuracy(real[:10], real, paired=True)


def test_realism_metrics_pair_generated_with_real_photos_but_not_the_floor(monkeypatch):
    import pix2pix_core.realism as realism

    calls = []
    monkeypatch.setattr(realism, "photo_features", lambda seg, photos: np.asarray(photos, np.float64))
    real_two_sample = realism.two_sample_accuracy
    monkeypatch.setattr(realism, "two_sample_accuracy",
                        lambda x, y, seed=0, paired=False: calls.append(paired) or real_two_sample(x, y, seed, paired=paired))
    photos = np.random.default_rng(1).normal(size=(12, 5))
    metrics = realism.realism_metrics(None, photos.copy(), photos, other_real=photos + 0.1)
    assert calls == [True, True, False, False]
    assert metrics["two_sample_acc"] == 0.5


# ---------------------------------------------------------------------------------------------- features
def test_photo_features_shape_and_determinism():
    segmenter = random_segmenter()
    photos = random_photos(5, size=80)  # resized to the segmenter's 64 px
    features = photo_features(segmenter, photos, batch_size=2)
    # 2 scales x (mean, std) x channels of the first 4 levels: 4 + 8 + 16 + 32
    assert features.shape == (5, 2 * 2 * (4 + 8 + 16 + 32)) and features.dtype == np.float64
    assert np.isfinite(features).all()
    np.testing.assert_array_equal(photo_features(segmenter, photos, batch_size=2), features)
    np.testing.assert_allclose(photo_features(segmenter, photos, batch_size=5), features, rtol=1e-5, atol=1e-6)
    assert photo_features(segmenter, photos, levels=3, scales=1).shape == (5, 2 * (4 + 8 + 16))
    # a tensor in [-1, 1] gives the same as the pictures
    tensor = torch.stack([torch.from_numpy(np.array(p.resize((64, 64), Image.BICUBIC))).permute(2, 0, 1)
                          for p in photos]).float() / 127.5 - 1.0
    np.testing.assert_allclose(photo_features(segmenter, tensor), features, rtol=1e-4, atol=1e-4)
    assert not any(module._forward_hooks for module in segmenter.net.modules())  # hooks removed


def test_photo_features_leave_the_network_as_they_found_it_when_a_photo_fails(tmp_path):
    """The segmenter's train mode was restored only when every photo was read: an unreadable one left a
    segmenter being trained in eval mode (batch norm frozen) for the rest of its training."""
    from pix2pix_core.errors import Pix2PixError

    segmenter = random_segmenter()
    segmenter.net.train()
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    with pytest.raises(Pix2PixError):
        photo_features(segmenter, [*random_photos(2, size=64), broken])
    assert segmenter.net.training
    assert not any(module._forward_hooks for module in segmenter.net.modules())


def test_photo_features_hook_and_switch_the_network_only_while_holding_its_lock(tmp_path):
    """The segmenter's lock guards its mode and hooks: a thread translating with it (label_map) waits for it.
    Its train mode was put back after the lock was released (a forward of that thread could run in train mode,
    batch norm updating its statistics), and the hooks were added before it was taken (that thread's forward hit
    this call's hooks: its features captured here, its pass stopped by _EnoughLevels)."""
    from pix2pix_core.errors import Pix2PixError

    segmenter = random_segmenter()
    net = segmenter.net
    seen = []

    class Watched:
        """The segmenter's lock, noting the network's mode and hooks whenever it is free."""

        def __init__(self, lock):
            self.lock = lock

        def free(self, when):
            seen.append((when, net.training, sum(len(m._forward_hooks) for m in net.modules())))

        def __enter__(self):
            self.free("taken")
            return self.lock.__enter__()

        def __exit__(self, *exc):
            result = self.lock.__exit__(*exc)
            self.free("released")
            return result

    segmenter._lock = Watched(segmenter._lock)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    for training in (True, False):
        net.train(training)
        photo_features(segmenter, random_photos(2, size=64))
        with pytest.raises(Pix2PixError):
            photo_features(segmenter, [*random_photos(2, size=64), broken])
        assert seen == [(when, training, 0) for when in ("taken", "released") * 2]
        seen.clear()


def test_encoder_levels_refuses_more_levels_than_the_network_has():
    net = random_segmenter(num_downs=5, crop_size=32).net
    assert len(encoder_levels(net, 5)) == 5
    with pytest.raises(ValueError, match="only 5 encoder levels"):
        encoder_levels(net, 6)


def test_realism_metrics_tell_a_shifted_set_from_real_photos():
    segmenter = random_segmenter()
    real, other, fake = random_photos(12, seed=0), random_photos(12, seed=1), random_photos(12, seed=2, offset=60)
    metrics = realism_metrics(segmenter, fake, real, other, seed=0)
    assert set(metrics) == REALISM_KEYS | FLOOR_KEYS
    assert metrics["two_sample_acc"] > 0.9 and metrics["kid_x1000"] > metrics["kid_x1000_floor"]
    assert len(metrics["two_sample_acc_seeds"]) == 2 and metrics["two_sample_acc"] == np.mean(metrics["two_sample_acc_seeds"])
    json.dumps(metrics, allow_nan=False)


# ---------------------------------------------------------------------------------------------- evaluate
def test_evaluate_reports_realism_and_its_floor(facades_checkpoint, facades_dir, tmp_path):
    metrics = evaluate(facades_checkpoint, facades_dir, tmp_path, segmenter=random_segmenter(), progress=False)
    assert REALISM_KEYS | FLOOR_KEYS <= set(metrics) and "realism_floor_note" not in metrics
    assert json.loads((tmp_path / "metrics.json").read_text()) == metrics
    assert all(math.isfinite(v) for k, v in metrics.items() if isinstance(v, float))
    assert all(0.0 <= a <= 1.0 for a in metrics["two_sample_acc_seeds"] + metrics["two_sample_acc_seeds_floor"])
    lines = format_metrics(metrics)
    assert "two_sample_acc_seeds " in lines and "kid_x1000_floor " in lines
    page = (tmp_path / "index.html").read_text()
    assert "<th>two_sample_acc_seeds</th><td>" in page and "[" not in page.split("two_sample_acc_seeds</th>")[1][:40]


def test_evaluate_without_train_split_or_with_realism_off(facades_checkpoint, facades_dir, tmp_path):
    shutil.copytree(facades_dir / "val", tmp_path / "data" / "val")
    metrics = evaluate(facades_checkpoint, tmp_path / "data", tmp_path / "a", segmenter=random_segmenter(), progress=False)
    assert REALISM_KEYS <= set(metrics) and not FLOOR_KEYS & set(metrics)
    assert "no readable train photos" in metrics["realism_floor_note"]
    off = evaluate(facades_checkpoint, facades_dir, tmp_path / "b", segmenter=random_segmenter(), realism=False,
                   progress=False)
    assert "fcn_miou" in off and not (REALISM_KEYS | FLOOR_KEYS) & set(off)


def test_a_floor_of_fewer_photos_than_were_scored_says_so(facades_checkpoint, facades_dir, colorize_checkpoint,
                                                          food_dir, tmp_path):
    """With fewer train photos than scored ones the floor was computed on as few (its classifier and KID on a
    sample of the scored photos that small), noisier than the numbers beside it, and nothing said so."""
    for name, source in (("facades", facades_dir), ("food", food_dir)):
        shutil.copytree(source / "val", tmp_path / name / "val")
        (tmp_path / name / "train").mkdir()
        for photo in sorted((source / "train").iterdir())[:2]:
            shutil.copy(photo, tmp_path / name / "train")
    metrics = evaluate(facades_checkpoint, tmp_path / "facades", tmp_path / "a", segmenter=random_segmenter(),
                       progress=False)
    assert FLOOR_KEYS <= set(metrics) and "only 2 train photos for the 3 scored" in metrics["realism_floor_note"]
    metrics = evaluate(colorize_checkpoint, tmp_path / "food", tmp_path / "b", progress=False)
    assert "colour_two_sample_acc_floor" in metrics
    assert "only 2 train photos for the 3 scored" in metrics["colour_realism_floor_note"]
    full = evaluate(colorize_checkpoint, food_dir, tmp_path / "c", progress=False)
    assert "colour_two_sample_acc_floor" in full and "colour_realism_floor_note" not in full
