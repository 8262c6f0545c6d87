"""The facade segmenter: FCN-score metrics on hand-made arrays, a tiny overfit, checkpoint round trip."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from conftest import tiny_segmenter_config
from pix2pix_core.errors import CheckpointError, Pix2PixError
from pix2pix_core.palette import clean_label_ids
from pix2pix_core.segment import (N_CLASSES, SegmentationData, Segmenter, SegmenterConfig, confusion_matrix,
                                  segmentation_scores, train_segmenter)


@pytest.fixture(scope="module")
def tiny_segmenter(tmp_path_factory, facades_dir):
    config = tiny_segmenter_config(facades_dir, tmp_path_factory.mktemp("segmenter") / "seg.safetensors")
    return train_segmenter(config, progress=False)


# ---------------------------------------------------------------------------------------------- metrics
def test_scores_of_a_known_confusion():
    truth = np.array([[0, 0], [1, 1]])
    pred = np.array([[0, 1], [1, 1]])
    assert confusion_matrix(pred, truth, 3).tolist() == [[1, 1, 0], [0, 2, 0], [0, 0, 0]]
    scores = segmentation_scores(pred, truth, n_classes=3)
    assert scores["pixel_acc"] == pytest.approx(3 / 4)
    assert scores["class_acc"] == pytest.approx((1 / 2 + 2 / 2) / 2)
    # IoU: class 0 = 1 / (2 + 1 - 1), class 1 = 2 / (2 + 3 - 2); class 2 is absent everywhere and left out
    assert scores["miou"] == pytest.approx((1 / 2 + 2 / 3) / 2)


def test_a_class_predicted_but_absent_from_truth_costs_iou_not_class_accuracy():
    truth = np.array([0, 0, 0, 0])
    pred = np.array([0, 0, 0, 2])
    scores = segmentation_scores(pred, truth, n_classes=3)
    assert scores["pixel_acc"] == pytest.approx(0.75)
    assert scores["class_acc"] == pytest.approx(0.75)  # only class 0 is in the truth
    assert scores["miou"] == pytest.approx((3 / 4 + 0 / 1) / 2)


def test_perfect_and_hopeless_predictions():
    truth = np.random.default_rng(0).integers(0, N_CLASSES, (32, 32))
    assert segmentation_scores(truth, truth) == {"pixel_acc": 1.0, "class_acc": 1.0, "miou": 1.0}
    wrong = segmentation_scores((truth + 1) % N_CLASSES, truth)
    assert wrong == {"pixel_acc": 0.0, "class_acc": 0.0, "miou": 0.0}


def test_shapes_must_match():
    with pytest.raises(ValueError):
        confusion_matrix(np.zeros((4, 4), int), np.zeros((4, 5), int))


# ---------------------------------------------------------------------------------------------- data
def test_training_data_are_photos_and_snapped_class_ids(facades_dir):
    config = tiny_segmenter_config(facades_dir, "unused", load_size=72)
    data = SegmentationData.load(config, "train", train=True)
    assert data.photos.shape == (3, 3, 72, 72) and data.ids.shape == (3, 72, 72)
    assert int(data.ids.min()) >= 0 and int(data.ids.max()) < N_CLASSES
    assert {0, 1, 2} <= set(data.ids.unique().tolist())  # background, facade, windows of random_label_map
    photos, targets = data.batch([0, 1], 64, None)
    assert photos.shape == (2, 3, 64, 64) and targets.shape == (2, 64, 64)
    assert -1.0 <= float(photos.min()) and float(photos.max()) <= 1.0


def test_jitter_crops_photo_and_labels_identically(facades_dir):
    import torch

    data = SegmentationData.load(tiny_segmenter_config(facades_dir, "unused", load_size=80), "train", train=True)
    photos, targets = data.batch([0] * 6, 64, torch.Generator().manual_seed(3))
    assert len({tuple(t.flatten()[:500].tolist()) for t in targets}) > 1  # really random crops
    for photo, target in zip(photos, targets):
        # conftest's photos are 255 - 0.8 * label colour (+ noise): invert that to re-derive the ids
        pixels = (photo.permute(1, 2, 0).numpy() + 1) * 127.5
        restored = clean_label_ids(Image.fromarray(((255 - pixels) / 0.8).clip(0, 255).astype(np.uint8)))
        assert (restored == target.numpy()).mean() > 0.9

# ---------------------------------------------------------------------------------------------- training
def test_tiny_segmenter_overfits_a_few_label_maps(tiny_segmenter, facades_dir):
    segmenter = Segmenter.load(tiny_segmenter.path)
    config = tiny_segmenter_config(facades_dir, "unused", max_images=None)
    train_scores = segmenter.evaluate_split(config.data, "train")  # all 6 train images; 3 were seen
    seen = SegmentationData.load(tiny_segmenter_config(facades_dir, "unused"), "train", train=False)
    hits = [(segmenter.predict_ids(Image.fromarray(seen.photos[i].permute(1, 2, 0).numpy())) == seen.ids[i].numpy()).mean()
            for i in range(len(seen))]
    assert min(hits) > 0.9, hits
    assert train_scores["pixel_acc"] > 0.85
    assert tiny_segmenter.train_loss < 0.5
    assert tiny_segmenter.val is not None and set(tiny_segmenter.val) == {"pixel_acc", "class_acc", "miou"}


def test_untrained_is_much_worse_than_trained(tiny_segmenter, facades_dir, tmp_path):
    untrained = train_segmenter(tiny_segmenter_config(facades_dir, tmp_path / "u.safetensors", epochs=1, lr=1e-9),
                                progress=False)
    assert untrained.val["pixel_acc"] < tiny_segmenter.val["pixel_acc"] - 0.2


# ---------------------------------------------------------------------------------------------- checkpoints
def test_save_load_round_trip(tiny_segmenter, facades_dir, tmp_path):
    loaded = Segmenter.load(tiny_segmenter.path)
    # the file is shared as it is: the trainer's paths are left out (data: its folder's name, out: the default)
    assert loaded.config == tiny_segmenter_config(facades_dir.name, SegmenterConfig().out)
    again = Segmenter.load(loaded.save(tmp_path / "again.safetensors"))
    photo = Image.open(facades_dir / "val" / "1.jpg").crop((0, 0, 64, 64))
    assert np.array_equal(loaded.predict_ids(photo), again.predict_ids(photo))
    assert tiny_segmenter.path.stat().st_size < 2_000_000  # fp16 weights


@pytest.mark.parametrize("mode,size", [("RGB", (64, 64)), ("RGBA", (97, 41)), ("L", (30, 120)), ("P", (65, 65))])
def test_label_map_has_the_input_size_and_palette_colours(tiny_segmenter, facades_dir, mode, size):
    segmenter = Segmenter.load(tiny_segmenter.path)
    photo = Image.open(facades_dir / "val" / "2.jpg").crop((0, 0, 64, 64)).resize(size).convert(mode)
    label_map = segmenter.label_map(photo)
    assert label_map.mode == "RGB" and label_map.size == size
    ids = segmenter.predict_ids(photo)
    assert ids.shape == (size[1], size[0])
    assert np.array_equal(clean_label_ids(label_map), ids)  # exact class colours: cleaning changes nothing


@pytest.mark.parametrize("device, words", [("gpu", "unknown device 'gpu': use auto, cpu, cuda, cuda:N or mps"),
                                           ("cuda:99", "device cuda:99: ")])
def test_a_segmenter_built_directly_checks_its_device_as_load_does(tiny_segmenter, device, words):
    """Segmenter(net, config, device) took torch.device(device) as given: torch's own "Expected one of cpu, cuda,
    ipu, xpu, ..." for a word it does not know, "Found no NVIDIA driver" for a GPU the machine lacks."""
    from pix2pix_core.segment import build_segmenter

    config = Segmenter.load(tiny_segmenter.path, device="cpu").config
    with pytest.raises(Pix2PixError, match=words):
        Segmenter(build_segmenter(config), config, device=device)
    with pytest.raises(Pix2PixError, match=words):
        Segmenter.load(tiny_segmenter.path, device=device)
    assert Segmenter(build_segmenter(config), config).device.type == "cpu"  # the default, as before


def test_generator_checkpoint_is_not_a_segmenter(facades_checkpoint, tiny_segmenter):
    with pytest.raises(CheckpointError, match="not a segmenter"):
        Segmenter.load(facades_checkpoint)
    from pix2pix_core.inference import Translator

    with pytest.raises(CheckpointError, match="segmenter, not a pix2pix generator"):
        Translator.load(tiny_segmenter.path, device="cpu")


def test_exporting_a_segmenter_says_it_is_one(tiny_segmenter, tmp_path):
    """export_generator read its config as a generator's: "its config is unreadable (crop_size 64 must be a multiple
    of 256 for unet_256 ...)", or "holds no generator weights"."""
    from pix2pix_core.checkpoint import export_generator

    with pytest.raises(CheckpointError, match=r"seg\.safetensors: this is a facade segmenter, not a pix2pix generator"):
        export_generator(tiny_segmenter.path, tmp_path / "g.safetensors")
    assert not (tmp_path / "g.safetensors").exists()


def test_impossible_config_is_one_clear_error():
    with pytest.raises(Pix2PixError, match="multiple of"):
        SegmenterConfig(crop_size=100, load_size=120).validate()
