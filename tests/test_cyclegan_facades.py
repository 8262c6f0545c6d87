"""scripts/cyclegan_facades.py: the broken-pairs data and the CycleGAN paper's two facades scores."""

from __future__ import annotations

import numpy as np
from PIL import Image

from conftest import write_aligned
from pix2pix_core import palette
from scripts import cyclegan_facades


def _source_index(picture: Image.Image, candidates: list[Image.Image]) -> int:
    array = np.asarray(picture, np.float32)
    return int(np.argmin([np.abs(array - np.asarray(c, np.float32)).mean() for c in candidates]))


def _distinct_pairs(folder, count: int, size: int = 64) -> None:
    """photo | label pairs that differ from each other: a window row at its own height, its own tint."""
    folder.mkdir(parents=True)
    for i in range(count):
        ids = np.zeros((size, size), np.int64)
        ids[8:, 8:-8] = 1
        ids[10 + 6 * i: 14 + 6 * i, 16:-16] = 2
        label = palette.ids_to_image(ids)
        photo = Image.fromarray((255 - np.asarray(label) * 0.5 - 12 * i).clip(0, 255).astype(np.uint8))
        pair = Image.new("RGB", (2 * size, size))
        pair.paste(photo, (0, 0))
        pair.paste(label, (size, 0))
        pair.save(folder / f"{i + 1}.jpg", quality=95)


def test_prepare_breaks_the_pairs_and_cleans_the_label_maps(tmp_path):
    data = tmp_path / "facades"
    _distinct_pairs(data / "train", 6)
    _distinct_pairs(data / "val", 3)
    out = tmp_path / "unpaired"
    cyclegan_facades.prepare(data, out)
    pairs = [cyclegan_facades.split_pair(p) for p in sorted((data / "train").iterdir())]
    labels = [Image.open(p).convert("RGB") for p in sorted((out / "trainA").iterdir())]
    photos = [Image.open(p).convert("RGB") for p in sorted((out / "trainB").iterdir())]
    assert len(labels) == len(photos) == 6 and len(list((out / "testA").iterdir())) == 3
    for label in labels:  # exact palette colours only: cleaned as every other label map
        colours = set(map(tuple, np.asarray(label).reshape(-1, 3).tolist()))
        assert colours <= set(map(tuple, palette.palette_array().tolist()))
    from_a = [_source_index(label, [a for a, _ in pairs]) for label in labels]
    from_b = [_source_index(photo, [b for _, b in pairs]) for photo in photos]
    assert sorted(from_a) == sorted(from_b) == list(range(6))  # every pair is there, once per side
    assert from_a != from_b  # but the file names no longer pair them


class _Oracle:
    """A stand-in model that knows the answer (or, with `blank`, answers a plain background)."""

    def __init__(self, answers: dict[bytes, Image.Image], blank: bool = False):
        self.answers, self.blank = answers, blank

    def translate(self, image: Image.Image, seed: int = 0) -> Image.Image:
        if self.blank:
            return palette.ids_to_image(np.zeros((image.height, image.width), np.int64))
        return self.answers[image.tobytes()]  # at the dataset size, as a model run on the full picture


class _ColourSegmenter:
    """Reads a picture's classes from its colours: a label map 'photo' is segmented perfectly."""

    def predict_ids(self, image: Image.Image) -> np.ndarray:
        return palette.nearest_class_ids(image)


def test_evaluate_scores_a_perfect_and_a_blank_model(tmp_path):
    data = tmp_path / "facades"
    write_aligned(data / "val", 3, seed=2)
    size = 32
    to_labels, to_photo = {}, {}
    for path in sorted((data / "val").iterdir()):
        label, photo = cyclegan_facades.split_pair(path)
        small_label, small_photo = cyclegan_facades._square(label, size, True), cyclegan_facades._square(photo, size, False)
        to_labels[small_photo.tobytes()] = label
        to_photo[small_label.tobytes()] = label  # a "photo" in the label colours: the segmenter reads it back
    models = {"perfect": (_Oracle(to_photo), _Oracle(to_labels)),
              "blank": (_Oracle({}, blank=True), _Oracle({}, blank=True))}
    figure = tmp_path / "figure.jpg"
    results = cyclegan_facades.evaluate(data, models, _ColourSegmenter(), size, figure)
    perfect, blank = results["perfect"], results["blank"]
    assert perfect["photo_to_labels_pixel_acc"] == perfect["labels_to_photo_pixel_acc"] == 1.0
    assert perfect["photo_to_labels_miou"] == 1.0
    assert blank["photo_to_labels_miou"] < 0.3 and blank["labels_to_photo_pixel_acc"] < 0.5
    assert "labels_to_photo_miou" in results["real photos (segmenter)"]
    assert Image.open(figure).size[1] > 0


def test_a_one_direction_cyclegan_export_is_one_line_not_a_traceback(tmp_path, capsys):
    """`evaluate --model C=f.safetensors` (a CycleGAN export of one generator) ended in a traceback from loading
    the direction the file does not hold; a missing checkpoint did too."""
    import pytest

    from pix2pix_core.checkpoint import export_generator
    from pix2pix_core.config import cyclegan_config
    from pix2pix_core.train import Trainer

    data = tmp_path / "unpaired"
    for side in "AB":
        write_aligned(data / f"train{side}", 2, size=40, seed=1)
    config = cyclegan_config(netG="resnet_6blocks", ngf=8, ndf=8, crop_size=32, load_size=36, batch_size=1,
                             max_steps=1, sample_every=0, save_every=0, precision="fp32", data=str(data),
                             out=str(tmp_path / "run"))
    checkpoint = Trainer(config).run().checkpoint
    common = ["evaluate", "--data", str(tmp_path / "facades"), "--segmenter", str(tmp_path / "none.safetensors")]
    for direction, held in (("AtoB", "A -> B"), ("BtoA", "B -> A")):
        export = export_generator(checkpoint, tmp_path / f"{direction}.safetensors", direction=direction)
        with pytest.raises(SystemExit) as exit_:
            cyclegan_facades.main([*common, "--model", f"C={export}"])
        error = capsys.readouterr().err
        assert exit_.value.code == 2 and error.count("\n") == 1 and "Traceback" not in error
        assert f"holds the CycleGAN's {held} generator only" in error and "LABELS_TO_PHOTO,PHOTO_TO_LABELS" in error
    with pytest.raises(SystemExit) as exit_:
        cyclegan_facades.main([*common, "--model", f"C={tmp_path / 'missing.safetensors'}"])
    assert exit_.value.code == 2 and capsys.readouterr().err.startswith("error: ")


def test_a_pix2pix_model_given_alone_is_said_to_be_one(facades_checkpoint, tmp_path, capsys):
    """A pix2pix checkpoint given alone was refused as holding "the A -> B generator only", to be replaced by "the
    CycleGAN's run folder": it is a pix2pix model, which goes with a model for the other way."""
    import pytest

    with pytest.raises(SystemExit) as exit_:
        cyclegan_facades.main(["evaluate", "--data", str(tmp_path / "facades"), "--segmenter",
                               str(tmp_path / "none.safetensors"), "--model", f"P={facades_checkpoint}"])
    error = capsys.readouterr().err
    assert exit_.value.code == 2 and error.count("\n") == 1 and "Traceback" not in error
    assert "is a pix2pix model: it translates one way" in error and "LABELS_TO_PHOTO,PHOTO_TO_LABELS" in error
    assert "CycleGAN" not in error and "generator only" not in error
