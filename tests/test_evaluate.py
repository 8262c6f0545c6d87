"""The `test` report: HTML rows and columns, metrics.json keys and values, the metrics themselves."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest

from conftest import tiny_segmenter_config, write_aligned, write_report
from pix2pix_core.errors import Pix2PixError
from pix2pix_core.evaluate import PSNR_CAP, colorfulness, evaluate, image_scores
from pix2pix_core.segment import train_segmenter

BASE_KEYS = {"count", "l1", "psnr", "ssim"}
FCN_KEYS = {f"fcn_{m}{s}" for m in ("pixel_acc", "class_acc", "miou") for s in ("", "_real")}
GRAY_KEYS = {"colorfulness_output", "colorfulness_target", "gray_l1", "gray_psnr", "gray_ssim"}


def read_report(out):
    """(metrics dict, list of rows, each a list of image sources)."""
    metrics = json.loads((out / "metrics.json").read_text())
    page = (out / "index.html").read_text()
    rows = [re.findall(r'<img src="([^"]+)"', row) for row in re.findall(r'<tr class="example">(.*?)</tr>', page)]
    for row in rows:
        for src in row:
            assert (out / src).is_file()
    return metrics, rows


def assert_finite_numbers(metrics):
    numbers = {k: v for k, v in metrics.items() if isinstance(v, (int, float))}
    assert numbers and all(math.isfinite(v) for v in numbers.values()), numbers


@pytest.fixture(scope="module")
def tiny_segmenter_path(tmp_path_factory, facades_dir):
    out = tmp_path_factory.mktemp("seg") / "seg.safetensors"
    return train_segmenter(tiny_segmenter_config(facades_dir, out), progress=False).path


# ---------------------------------------------------------------------------------------------- metrics
def test_image_scores_of_identical_and_different_images():
    rng = np.random.default_rng(0)
    truth = rng.uniform(0, 1, (32, 32, 3))
    same = image_scores(truth, truth)
    assert same == {"l1": 0.0, "psnr": PSNR_CAP, "ssim": pytest.approx(1.0)}
    noisy = image_scores(np.clip(truth + rng.normal(0, 0.1, truth.shape), 0, 1), truth)
    assert 0.0 < noisy["l1"] < 0.1 and 15 < noisy["psnr"] < 25 and noisy["ssim"] < 0.95


def test_colorfulness_follows_hasler_and_suesstrunk():
    assert colorfulness(np.full((8, 8, 3), 0.5)) == pytest.approx(0.0)  # gray has no colour
    red = np.zeros((8, 8, 3))
    red[..., 0] = 1.0
    # rg = 255, yb = 127.5, no spread: 0.3 * sqrt(255^2 + 127.5^2)
    assert colorfulness(red) == pytest.approx(0.3 * math.hypot(255, 127.5))


# ---------------------------------------------------------------------------------------------- reports
def test_facades_report_with_segmenter_has_fcn_scores_and_four_columns(facades_checkpoint, facades_dir,
                                                                          tiny_segmenter_path, tmp_path):
    metrics = evaluate(facades_checkpoint, facades_dir, tmp_path, segmenter=tiny_segmenter_path, progress=False)
    stored, rows = read_report(tmp_path)
    assert stored == metrics
    assert BASE_KEYS | FCN_KEYS <= set(metrics) and metrics["count"] == 3
    assert_finite_numbers(metrics)
    assert all(0.0 <= metrics[k] <= 1.0 for k in FCN_KEYS)
    assert metrics["fcn_pixel_acc_real"] > 0.8  # the tiny segmenter recognises real (fixture) photos
    # ...and the output scores are the generated photos' own (a tiny model's photos are far from real)
    assert metrics["fcn_pixel_acc"] < metrics["fcn_pixel_acc_real"] - 0.2
    assert len(rows) == 3 and all(len(row) == 4 for row in rows)
    assert "segmentation of output" in (tmp_path / "index.html").read_text()


def test_facades_report_without_segmenter(facades_checkpoint, facades_dir, tmp_path):
    metrics = evaluate(facades_checkpoint, facades_dir, tmp_path, segmenter=False, limit=2, progress=False)
    _, rows = read_report(tmp_path)
    assert metrics["count"] == 2 and not FCN_KEYS & set(metrics)
    assert len(rows) == 2 and all(len(row) == 3 for row in rows)
    assert 0.0 < metrics["l1"] < 1.0 and -1.0 <= metrics["ssim"] <= 1.0


def test_colorize_report_has_the_gray_baseline(colorize_checkpoint, food_dir, tmp_path):
    metrics = evaluate(colorize_checkpoint, food_dir, tmp_path, progress=False)
    _, rows = read_report(tmp_path)
    assert BASE_KEYS | GRAY_KEYS <= set(metrics) and metrics["count"] == 3
    assert_finite_numbers(metrics)
    assert metrics["colorfulness_target"] > 10  # the fixture photos are colourful gradients
    assert len(rows) == 3 and all(len(row) == 3 for row in rows)


@pytest.mark.parametrize("task", ["colorize", "facades"])
def test_size_reads_the_split_at_that_size(task, colorize_checkpoint, food_dir, facades_checkpoint, facades_dir,
                                          tmp_path):
    """Models trained at different sizes are compared at one: outputs, truth and the floor all at --size."""
    from PIL import Image

    checkpoint, data = (colorize_checkpoint, food_dir) if task == "colorize" else (facades_checkpoint, facades_dir)
    native = evaluate(checkpoint, data, tmp_path / "native", segmenter=False, progress=False)
    metrics = evaluate(checkpoint, data, tmp_path / "at96", segmenter=False, progress=False, size=96)
    assert native["size"] == 128 and metrics["size"] == 96
    _, rows = read_report(tmp_path / "at96")
    for src in rows[0]:
        assert Image.open(tmp_path / "at96" / src).size == (96, 96)
    assert metrics["gray_psnr" if task == "colorize" else "l1"] != native["gray_psnr" if task == "colorize" else "l1"]
    for bad in (8, 4096):
        with pytest.raises(Pix2PixError, match="--size must be between"):
            evaluate(checkpoint, data, tmp_path / "bad", segmenter=False, progress=False, size=bad)


@pytest.mark.parametrize("limit, words", [("2", "a number, got str"), (1.5, "a whole number, got 1.5"),
                                          (0, "at least 1, got 0")])
def test_a_limit_of_another_type_is_one_clear_error(facades_checkpoint, facades_dir, tmp_path, limit, words):
    """limit="2" failed as "'<' not supported between instances of 'str' and 'int'" (evaluate) or "slice indices
    must be integers" (evaluate_unpaired), before any report folder is made."""
    from pix2pix_core.evaluate import evaluate_unpaired

    with pytest.raises(Pix2PixError, match=f"^--limit must be {words}$"):
        evaluate(facades_checkpoint, facades_dir, tmp_path / "out", limit=limit, segmenter=False, progress=False)
    with pytest.raises(Pix2PixError, match=f"^--limit must be {words}$"):
        evaluate_unpaired(facades_checkpoint, facades_dir, tmp_path / "out", limit=limit, progress=False)
    assert not (tmp_path / "out").exists()


def test_rerun_with_fewer_images_leaves_no_stale_pictures(facades_checkpoint, facades_dir, tmp_path):
    evaluate(facades_checkpoint, facades_dir, tmp_path, segmenter=False, progress=False)
    evaluate(facades_checkpoint, facades_dir, tmp_path, segmenter=False, limit=1, progress=False)
    assert len(list((tmp_path / "images").rglob("*.png"))) == 3


def test_a_report_deletes_only_the_pictures_its_previous_page_showed(facades_checkpoint, facades_dir, tmp_path):
    """Every PNG of OUT/images named like a report picture (4 digits, _, ...) was deleted: a user's own
    images/2023_holiday.png too. And the old pictures went before the new page was written, so a Ctrl-C
    midway left the old page with its pictures gone."""
    from PIL import Image

    out = tmp_path / "report"
    (out / "images").mkdir(parents=True)
    for name in ("2023_holiday.png", "0001_scan.png"):
        Image.new("RGB", (8, 8)).save(out / "images" / name)
    evaluate(facades_checkpoint, facades_dir, out, segmenter=False, progress=False)
    assert (out / "images" / "2023_holiday.png").exists() and (out / "images" / "0001_scan.png").exists()
    first = set(p.name for p in (out / "images").rglob("0*_*_output.png"))
    assert len(first) == 3
    evaluate(facades_checkpoint, facades_dir, out, segmenter=False, limit=1, progress=False)
    assert {p.name for p in (out / "images").rglob("*.png")} == {
        "2023_holiday.png", "0001_scan.png", *(src.split("/")[-1] for src in read_report(out)[1][0])}


def test_missing_data_is_one_clear_error(facades_checkpoint, tmp_path):
    with pytest.raises(Pix2PixError, match="not found"):
        evaluate(facades_checkpoint, tmp_path / "nowhere", tmp_path / "out", progress=False)



@pytest.mark.parametrize("model", ["pix2pix", "cyclegan"])
def test_a_file_given_for_the_report_folder_is_refused_before_any_translation(model, facades_checkpoint, facades_dir,
                                                                              tmp_path, monkeypatch):
    """The command line checked --out first; a Python caller met OSError's words once every picture was
    translated: "File exists; free some space or give another --out"."""
    import pix2pix_core.evaluate as evaluate_module

    def no_work(*args, **kwargs):
        raise AssertionError("translated before the report folder was checked")

    monkeypatch.setattr(evaluate_module.Translator, "load", no_work)
    taken = tmp_path / "notes.txt"
    taken.write_text("mine")
    run = evaluate if model == "pix2pix" else evaluate_module.evaluate_unpaired
    with pytest.raises(Pix2PixError, match=f"^out: {re.escape(str(taken))} is a file, not a folder: give a folder$"):
        run(facades_checkpoint, facades_dir, taken, progress=False)
    assert taken.read_text() == "mine"
    site = tmp_path / "site"  # a folder with a page no report wrote: refused by the library too, not the CLI only
    site.mkdir()
    (site / "index.html").write_text("<html>my home page</html>")
    with pytest.raises(Pix2PixError, match="would replace .*index.html, which no earlier report wrote"):
        run(facades_checkpoint, facades_dir, site, progress=False)
    assert (site / "index.html").read_text() == "<html>my home page</html>"

COLOUR_KEYS = {"colour_two_sample_acc", "colour_two_sample_acc_floor", "colour_detail_ratio",
               "colour_detail_output", "colour_detail_target"}


def test_colorize_report_has_the_colour_two_sample_test_and_colour_detail(colorize_checkpoint, food_dir, tmp_path):
    metrics = evaluate(colorize_checkpoint, food_dir, tmp_path, progress=False)
    assert COLOUR_KEYS <= set(metrics)
    assert_finite_numbers(metrics)
    for key in ("colour_two_sample_acc", "colour_two_sample_acc_floor"):
        assert 0.0 <= metrics[key] <= 1.0 and len(metrics[f"{key.replace('_floor', '')}_seeds"
                                                        + ("_floor" if key.endswith("floor") else "")]) == 2
    assert metrics["colour_detail_ratio"] == pytest.approx(
        metrics["colour_detail_output"] / metrics["colour_detail_target"])
    assert not COLOUR_KEYS & set(evaluate(colorize_checkpoint, food_dir, tmp_path / "plain", progress=False,
                                          realism=False))


def colour_photos(count, seed, gray=False, speckle=0.0):
    from PIL import Image

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:48, 0:48] / 48
    photos = []
    for _ in range(count):
        base = rng.uniform(60, 200, 3)
        image = np.stack([base[0] + 40 * xx, base[1] + 40 * yy, base[2] - 40 * xx], -1)
        image = image + rng.normal(0, speckle, image.shape) if speckle else image
        picture = Image.fromarray(np.clip(image, 0, 255).astype(np.uint8), "RGB")
        photos.append(picture.convert("L").convert("RGB") if gray else picture)
    return photos


def test_colour_two_sample_test_tells_gray_from_colour_and_not_colour_from_colour():
    from pix2pix_core.colour_realism import colour_realism_metrics

    real = colour_photos(20, seed=1)
    gray = colour_realism_metrics(colour_photos(20, 1, gray=True), real, other_real=colour_photos(20, seed=3))
    assert gray["colour_two_sample_acc"] == 1.0 and gray["colour_two_sample_acc_floor"] < 0.8  # the floor: real only
    same = colour_realism_metrics(colour_photos(20, seed=2), real, other_real=colour_photos(20, seed=3))
    assert same["colour_two_sample_acc"] < 0.8 and same["colour_two_sample_acc_floor"] < 0.8


def test_colour_two_sample_test_keeps_a_colorized_photo_with_its_own_photo():
    """Photos colorized perfectly (copies of the real ones) are exactly at chance; with pairs split across
    folds they read far below it (the classifier learns each copy and calls its twin colorized)."""
    from pix2pix_core.colour_realism import colour_realism_metrics

    real = colour_photos(30, seed=1)
    metrics = colour_realism_metrics([p.copy() for p in real], real)
    assert metrics["colour_two_sample_acc"] == 0.5
    assert colour_realism_metrics([p.copy() for p in real], real, paired=False)["colour_two_sample_acc"] < 0.45


def test_colour_statistics_read_a_pil_image_as_its_file(tmp_path):
    """A transparent photo is laid on white when read from a file; as a PIL image its alpha was dropped
    (the hidden colour counted), so the same photo had two sets of colour statistics."""
    from PIL import Image

    from pix2pix_core.colour_realism import colour_features

    pixels = np.zeros((16, 16, 4), np.uint8)
    pixels[..., 0], pixels[:, :8, 3] = 220, 255  # red on the left, transparent red on the right
    picture = Image.fromarray(pixels, "RGBA")
    picture.save(tmp_path / "half.png")
    np.testing.assert_allclose(colour_features([picture]), colour_features([tmp_path / "half.png"]))


def test_colour_detail_sees_speckle():
    from pix2pix_core.colour_realism import colour_detail

    smooth, speckled = colour_photos(4, seed=5), colour_photos(4, seed=5, speckle=12.0)
    assert colour_detail(speckled) > 3 * colour_detail(smooth)
    assert colour_detail(colour_photos(2, seed=5, gray=True)) < 1e-3  # float32 Lab of gray: ab ~ 0
    from PIL import Image
    thin = Image.new("RGB", (50, 1), (200, 30, 30))  # no gradient to measure: left out, not NaN
    assert colour_detail([thin, *speckled]) == pytest.approx(colour_detail(speckled))
    assert math.isnan(colour_detail([thin]))


def test_a_ratio_of_nothing_is_null_and_other_pictures_in_the_folder_stay(colorize_checkpoint, tmp_path, capsys):
    """Flat-colour photos have no colour detail: the ratio was NaN, json.dumps(allow_nan=False) raised after
    index.html was written (a new page beside an old metrics.json), and write_report deleted every PNG in
    OUT/images, a user's own pictures too."""
    from PIL import Image

    from pix2pix_core.cli import main

    val = tmp_path / "flat" / "val"
    val.mkdir(parents=True)
    for i, colour in enumerate([(200, 40, 40), (40, 160, 60), (50, 60, 200)]):
        Image.new("RGB", (64, 64), colour).save(val / f"flat_{i}.png")
    out = tmp_path / "report"
    (out / "images").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(out / "images" / "holiday.png")
    assert main(["test", "--checkpoint", str(colorize_checkpoint), "--data", str(tmp_path / "flat"),
                 "--out", str(out), "--threads", "1"]) == 0
    stored = json.loads((out / "metrics.json").read_text())
    assert stored["count"] == 3 and stored["colour_detail_ratio"] is None
    assert (out / "images" / "holiday.png").exists()
    printed = capsys.readouterr().out
    assert "colour realism metrics: skipped: no readable train photos" in printed
    # 3 photos: the numbers are noise, said in the terminal and in the report (metrics.json and the page) alike
    assert "note: colour realism metrics: on 3 images these swing widely" in printed
    assert stored["colour_realism_note"].startswith("on 3 images these swing widely")
    assert "on 3 images these swing widely" in (out / "index.html").read_text()


def test_a_photo_to_label_model_gets_no_fcn_score(facades_dir, tiny_segmenter_path, tmp_path):
    """The segmenter ran on generated label maps and scored them against snapped photos: every FCN value 0."""
    from conftest import tiny_config
    from pix2pix_core.train import Trainer

    result = Trainer(tiny_config(data=str(facades_dir), out=str(tmp_path / "run"), direction="AtoB",
                                 max_steps=1)).run()
    metrics = evaluate(result.checkpoint, facades_dir, tmp_path / "report", segmenter=tiny_segmenter_path,
                       progress=False)
    assert not FCN_KEYS & set(metrics) and "this model makes label maps" in metrics["fcn_note"]


def test_a_segmenter_given_for_a_colorize_model_is_said_to_be_skipped(colorize_checkpoint, food_dir,
                                                                      tiny_segmenter_path, tmp_path):
    """It was dropped without a word; a photo -> labels model's was noted (fcn_note), and so is this one now."""
    metrics = evaluate(colorize_checkpoint, food_dir, tmp_path / "given", segmenter=tiny_segmenter_path,
                       realism=False, progress=False)
    assert not FCN_KEYS & set(metrics) and metrics["fcn_note"] == (
        "skipped: the FCN-score is for facades label map -> photo models; this is a colorize model")
    assert "this is a colorize model" in (tmp_path / "given" / "index.html").read_text()
    assert "fcn_note" not in evaluate(colorize_checkpoint, food_dir, tmp_path / "default", realism=False,
                                      progress=False)  # none asked for: nothing to say


def test_a_flat_folder_is_named_as_itself_and_training_images_are_said_to_be(facades_checkpoint, facades_dir, tmp_path):
    """`test` on a folder with no train/ or val/ scores the folder itself: metrics.json said "split": "val" and
    the page a folder .../val that does not exist. Scoring the very folder the model trained on is warned about."""
    import shutil
    import warnings

    flat = tmp_path / "mine"
    shutil.copytree(facades_dir / "val", flat)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # images the model has not seen: nothing to say
        metrics = evaluate(facades_checkpoint, flat, tmp_path / "flat", segmenter=False, progress=False)
    assert metrics["split"] == "(the folder itself)" and metrics["folder"] == str(flat) and "data_note" not in metrics
    assert "<h1>latest.safetensors on mine (the folder itself: it has no val/)</h1>" in (
        tmp_path / "flat" / "index.html").read_text()
    assert read_report(tmp_path / "flat")[0]["split"] == "(the folder itself)"

    with pytest.warns(UserWarning, match=r"train is the folder this model trained on: these scores are on its "
                                         r"training images, not held-out ones"):
        metrics = evaluate(facades_checkpoint, facades_dir / "train", tmp_path / "own", segmenter=False, progress=False)
    assert metrics["split"] == "(the folder itself)" and "training images" in metrics["data_note"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # --split train: asked for, noted in the report only
        metrics = evaluate(facades_checkpoint, facades_dir, tmp_path / "train", segmenter=False, progress=False,
                           split="train")
    assert metrics["split"] == "train" and "training images" in metrics["data_note"]
    assert metrics["folder"] == str(facades_dir / "train")


def test_test_split_train_prints_the_training_images_note(facades_checkpoint, facades_dir, tmp_path, capsys):
    """`test --split train` wrote the note in the report but said nothing on the terminal."""
    from pix2pix_core.cli import main

    assert main(["test", "--checkpoint", str(facades_checkpoint), "--data", str(facades_dir), "--out",
                 str(tmp_path / "train"), "--split", "train", "--no-segmenter", "--limit", "1", "--device", "cpu"]) == 0
    assert f"note: {facades_dir / 'train'} is the folder this model trained on: these scores are on its training " \
           "images\n" in capsys.readouterr().out


def test_data_of_another_task_is_warned_about_once_naming_the_model(colorize_checkpoint, facades_dir, tmp_path):
    """A colorize model tested on A|B pairs: the hint asked "is --task colorize right?" (test has no --task),
    once for val and again for the train photos of the realism floor."""
    with pytest.warns(UserWarning) as caught:
        evaluate(colorize_checkpoint, facades_dir, tmp_path, progress=False)
    messages = [str(w.message) for w in caught if "A|B" in str(w.message)]
    assert messages == [f"most photos in {facades_dir / 'val'} are twice as wide as tall, like A|B pairs, but the "
                        f"model {colorize_checkpoint} is a colorize one: is --data (or --checkpoint) the one you "
                        "meant?"]


def test_a_report_picture_cut_short_leaves_no_half_file(tmp_path, monkeypatch):
    """The report's pictures were saved straight under their names: a Ctrl-C or a full disk mid-write left a
    truncated PNG that the page then showed broken. Each is written whole or not at all."""
    from PIL import Image

    def cut_short(image, fp, *args, **kwargs):
        (open(fp, "wb") if isinstance(fp, (str, bytes)) or hasattr(fp, "__fspath__") else fp).write(b"\x89PNG half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", cut_short)
    with pytest.raises(Pix2PixError, match=f"cannot write the report in {tmp_path}: No space left on device"):
        write_report(tmp_path, "title", {}, [("a.png", {"output": Image.new("RGB", (8, 8))})])
    assert list(tmp_path.rglob("*")) == []  # nor a staging folder


def test_a_report_cut_short_leaves_the_previous_page_whole(tmp_path, monkeypatch):
    """The previous report's pictures were deleted before the new ones were written: a Ctrl-C or a full disk
    midway left the old index.html showing pictures that were gone."""
    from PIL import Image

    write_report(tmp_path, "old", {}, [(f"{i}.png", {"output": Image.new("RGB", (8, 8))}) for i in range(3)])
    shown = read_report_pictures(tmp_path)
    monkeypatch.setattr(Image.Image, "save", lambda *args, **kwargs: (_ for _ in ()).throw(OSError(28, "full")))
    with pytest.raises(Pix2PixError, match="full"):
        write_report(tmp_path, "new", {}, [("new.png", {"output": Image.new("RGB", (8, 8))})])
    assert "<title>old</title>" in (tmp_path / "index.html").read_text()
    assert len(shown) == 3 and all((tmp_path / src).is_file() for src in shown)


def read_report_pictures(out):
    return re.findall(r'<img src="([^"]+)"', (out / "index.html").read_text())


def folder_bytes(folder):
    """Every file under `folder` (relative path -> bytes): a report as a reader finds it."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def interrupt_on_call(monkeypatch, owner, name, call, check=lambda: None):
    """`owner.name` raising KeyboardInterrupt (a Ctrl-C) at its `call`-th call, after `check()`."""
    original, calls = getattr(owner, name), []

    def cut_short(*args, **kwargs):
        calls.append(1)
        if len(calls) == call:
            check()
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, cut_short)


@pytest.mark.parametrize("when", ["translating", "saving pictures"])
def test_a_test_cut_short_leaves_the_earlier_report_in_its_folder_whole(facades_checkpoint, facades_dir, tmp_path,
                                                                         monkeypatch, when):
    """A `test` into a folder holding an earlier report saved its pictures into images/ one by one, under the
    names the earlier page shows: a Ctrl-C (or a crash) midway left that page showing the new run's pictures as its
    own. They are staged in the report folder now, each row on disk as it is made, and enter images/ only with the
    new page; a run cut short leaves the earlier report byte for byte as it was, and no staging folder."""
    from PIL import Image

    from pix2pix_core.inference import Translator

    out = tmp_path / "report"
    evaluate(facades_checkpoint, facades_dir, out, segmenter=False, progress=False)
    earlier = folder_bytes(out)
    other = tmp_path / "other"  # the same file names (1.jpg ...), other pictures
    write_aligned(other / "val", 3, seed=7)

    def first_row_on_disk():  # memory holds one row at a time: the first one's pictures are staged already
        staged = [p.name for p in out.glob(".images.*.partial/*.png")]
        assert sorted(staged) == ["0000_1_ground_truth.png", "0000_1_input.png", "0000_1_output.png"]

    if when == "translating":
        interrupt_on_call(monkeypatch, Translator, "translate", 2, first_row_on_disk)
    else:
        interrupt_on_call(monkeypatch, Image.Image, "save", 2)
    with pytest.raises(KeyboardInterrupt):
        evaluate(facades_checkpoint, other, out, segmenter=False, progress=False)
    assert folder_bytes(out) == earlier


def test_a_staging_folder_a_kill_left_is_removed_and_a_running_one_kept(facades_checkpoint, facades_dir, tmp_path):
    """A kill leaves the staging folder of the pictures it made: the next `test` into the folder removes it, but
    not the one another `test` into the same folder is filling now (it holds its lock)."""
    from pix2pix_core.file_lock import try_lock, unlock
    from pix2pix_core.report_stage import STAGE_LOCK

    out = tmp_path / "report"
    killed, running = out / ".images.killed.partial", out / ".images.running.partial"
    for folder in (killed, running):
        folder.mkdir(parents=True)
        (folder / "0000_1_input.png").write_bytes(b"staged")
    (killed / STAGE_LOCK).write_text("pid 1 on elsewhere since 12:00:00\n")  # its holder is gone
    held = try_lock(running / STAGE_LOCK)
    try:
        evaluate(facades_checkpoint, facades_dir, out, segmenter=False, limit=1, progress=False)
        assert not killed.exists() and (running / "0000_1_input.png").read_bytes() == b"staged"
    finally:
        unlock(held, running / STAGE_LOCK)
    assert sorted(p.name for p in out.iterdir()) == [".images.running.partial", "images", "index.html",
                                                     "metrics.json"]
    _, rows = read_report(out)
    assert [[re.sub(r"/report-[a-z0-9_]{8}/", "/", src) for src in row] for row in rows] == [
        ["images/0000_1_input.png", "images/0000_1_output.png", "images/0000_1_ground_truth.png"]]


def test_a_test_cut_short_leaves_no_new_folder(facades_checkpoint, facades_dir, tmp_path, monkeypatch):
    """The report folder is made as the work starts (its pictures are staged in it): a run cut short takes it
    away again, as it never made it before, when nothing else is in it."""
    from pix2pix_core.inference import Translator

    interrupt_on_call(monkeypatch, Translator, "translate", 2)
    with pytest.raises(KeyboardInterrupt):
        evaluate(facades_checkpoint, facades_dir, tmp_path / "new" / "report", segmenter=False, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_colour_realism_of_each_photos_statistics_is_that_of_the_photos() -> None:
    """`test` keeps each photo's colour statistics (`colour_stats`), not the photo: the metrics from them are the
    metrics from the photos, the floor's and a thin photo's (no colour detail) included."""
    from PIL import Image

    from pix2pix_core.colour_realism import colour_realism_metrics, colour_realism_of_stats, colour_stats

    generated, real, other = colour_photos(12, seed=2), colour_photos(12, seed=1), colour_photos(12, seed=3)
    generated.append(Image.new("RGB", (1, 9), (200, 40, 40)))
    real.append(Image.new("RGB", (9, 1), (40, 200, 40)))
    stats = [[colour_stats(photo) for photo in photos] for photos in (generated, real, other)]
    assert colour_realism_of_stats(*stats, seed=4) == colour_realism_metrics(generated, real, other, seed=4)


@pytest.mark.parametrize("task, realism, kept", [("colorize", False, 1), ("colorize", True, 1), ("facades", False, 1),
                                                 ("facades", True, 1)])
def test_a_test_keeps_only_the_outputs_its_realism_metrics_read(task, realism, kept, colorize_checkpoint, food_dir,
                                                                facades_checkpoint, facades_dir, tiny_segmenter_path,
                                                                tmp_path, monkeypatch):
    """Every output (and truth) was kept to the end of a `test` for the realism metrics, with realism=False too:
    memory grew with the split for nothing. The colour metrics read each one's colour statistics (all 3 full-size
    outputs were kept); KID and the two-sample test copies at the segmenter's size (64 px copies of these 128 px
    outputs). 1: the loop's last one."""
    import gc
    import weakref

    from pix2pix_core import evaluate as evaluate_module
    from pix2pix_core.inference import Translator

    outputs, alive = [], []
    translate, write_report_folder = Translator.translate, evaluate_module.write_report_folder

    def tracked(self, *args, **kwargs):
        output = translate(self, *args, **kwargs)
        outputs.append(weakref.ref(output))
        return output

    def count_then_write(*args):  # after the loop, the realism metrics' lists still held
        gc.collect()
        alive.append(sum(ref() is not None for ref in outputs))
        return write_report_folder(*args)

    monkeypatch.setattr(Translator, "translate", tracked)
    monkeypatch.setattr(evaluate_module, "write_report_folder", count_then_write)
    checkpoint, data = (colorize_checkpoint, food_dir) if task == "colorize" else (facades_checkpoint, facades_dir)
    metrics = evaluate(checkpoint, data, tmp_path, segmenter=tiny_segmenter_path if task == "facades" else None,
                       realism=realism, progress=False)
    assert len(outputs) == metrics["count"] == 3 and alive == [kept]
    assert ("kid_x1000" in metrics) == (task == "facades" and realism)


@pytest.mark.parametrize("task", ["colorize", "facades"])
def test_the_floor_keeps_what_its_metrics_read_of_each_train_photo(task, colorize_checkpoint, food_dir,
                                                                   facades_checkpoint, facades_dir,
                                                                   tiny_segmenter_path, tmp_path, monkeypatch):
    """The real-vs-real floor's train photos were all held at the scored size until its metrics ran (at --size
    2048, 12.6 MB each): each is reduced as it is read now, to what the metrics read (the colour statistics; a
    copy at the segmenter's size), as the scored photos are."""
    import gc
    import weakref

    from pix2pix_core import colour_realism, realism
    from pix2pix_core import evaluate as evaluate_module

    decoded, alive, floors = [], [], []
    to_pil, floor_photos = evaluate_module._to_pil, evaluate_module._floor_photos
    reading = []

    def tracked(picture):
        made = to_pil(picture)
        if reading:  # a floor photo, as decoded
            decoded.append(weakref.ref(made))
        return made

    def floor(*args):
        reading.append(True)
        try:
            return floor_photos(*args)
        finally:
            reading.clear()

    def record(other):  # as the floor's metrics start: which decoded floor photos are still held
        gc.collect()
        alive.append(sum(ref() is not None for ref in decoded))
        floors.append(other)

    colour_metrics, segmenter_metrics = colour_realism.colour_realism_of_stats, realism.realism_metrics
    monkeypatch.setattr(evaluate_module, "_to_pil", tracked)
    monkeypatch.setattr(evaluate_module, "_floor_photos", floor)
    monkeypatch.setattr(colour_realism, "colour_realism_of_stats",
                        lambda generated, real, other, **kwargs: record(other) or colour_metrics(generated, real, other,
                                                                                                 **kwargs))
    monkeypatch.setattr(realism, "realism_metrics", lambda seg, generated, real, other, **kwargs: record(
        other) or segmenter_metrics(seg, generated, real, other, **kwargs))
    checkpoint, data = (colorize_checkpoint, food_dir) if task == "colorize" else (facades_checkpoint, facades_dir)
    metrics = evaluate(checkpoint, data, tmp_path, segmenter=tiny_segmenter_path if task == "facades" else None,
                       progress=False)
    assert len(decoded) == metrics["count"] == 3 and alive == [0]
    if task == "facades":  # copies at the tiny segmenter's 64 px, as the scored photos are kept
        assert [photo.size for photo in floors[0]] == [(64, 64)] * 3
