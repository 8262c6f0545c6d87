"""Dataset formats, paired jitter and the Lab round trip."""

import shutil
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import tiny_config, write_colour_photos
from pix2pix_core.color import lab_normalized_to_rgb, pil_to_unit, rgb_to_lab_normalized
from pix2pix_core.data import PairDataset, build_dataset, Item, load_items, rank_share
from pix2pix_core.errors import Pix2PixError
from pix2pix_core.palette import label_map_for_network
from pix2pix_core.train import Trainer


def test_paired_jitter_crops_and_flips_both_images_identically():
    """Target = input shifted by a constant: any crop/flip mismatch between the two breaks equality."""
    base = torch.arange(3 * 20 * 20, dtype=torch.int64).remainder(251).to(torch.uint8).reshape(3, 20, 20)
    dataset = PairDataset([Item("x", base, base.clone())], "aligned", crop_size=16, train=True, seed=3)
    seen = set()
    for epoch in range(12):
        dataset.set_epoch(epoch)
        sample = dataset[0]
        assert torch.equal(sample["input"], sample["target"])
        seen.add(dataset.jitter_params(0, 20))
    assert len(seen) > 3  # crops really vary across epochs
    assert any(flip for _, _, flip in seen) and not all(flip for _, _, flip in seen)


def test_jitter_is_reproducible_per_epoch():
    base = torch.randint(0, 255, (3, 30, 30), dtype=torch.uint8)
    dataset = PairDataset([Item("x", base, base)], "aligned", crop_size=16, train=True, seed=1)
    dataset.set_epoch(5)
    first = dataset[0]["input"]
    dataset.set_epoch(6)
    dataset.set_epoch(5)
    assert torch.equal(first, dataset[0]["input"])


def test_no_jitter_at_test_time(facades_dir):
    config = tiny_config(task="facades", data=str(facades_dir), direction="BtoA")
    dataset = build_dataset(config, "val", train=False)
    assert len(dataset) == 3
    first = dataset[0]["input"]
    assert first.shape == (3, 128, 128)
    for epoch in range(6):  # jitter is seeded per (seed, epoch, index): at train time some epoch would differ
        dataset.set_epoch(epoch)
        assert torch.equal(dataset[0]["input"], first) and torch.equal(dataset[1]["target"], dataset[1]["target"])
    train = build_dataset(config, "val", train=True)
    seen = set()
    for epoch in range(6):
        train.set_epoch(epoch)
        seen.add(train[0]["input"].numpy().tobytes())
    assert len(seen) > 1  # the same item with jitter on: the check above can fail


def test_aligned_direction_picks_the_halves(facades_dir):
    """B (right half) is the label map: its pixels are (nearly) palette colours, A's are not.

    Task facades cleans B (`palette.label_map_for_network`: NEAREST resize), task aligned resizes both
    halves bicubic; the photo halves are the same, the label halves agree on almost every pixel."""
    label_first = build_dataset(tiny_config(task="facades", data=str(facades_dir), direction="BtoA"), "val", False)
    photo_first = build_dataset(tiny_config(task="aligned", data=str(facades_dir), direction="AtoB"), "val", False)
    assert torch.equal(label_first[0]["target"], photo_first[0]["input"])
    cleaned, bicubic = label_first[0]["input"], photo_first[0]["target"]
    assert ((cleaned - bicubic).abs().amax(0) < 0.2).float().mean() > 0.9
    pair = Image.open(facades_dir / "val" / label_first[0]["name"]).convert("RGB")
    half_b = pair.crop((pair.width // 2, 0, pair.width, pair.height))
    expected = np.asarray(label_map_for_network(half_b, 128), dtype=np.float32) / 127.5 - 1
    assert torch.allclose(cleaned, torch.from_numpy(expected).permute(2, 0, 1), atol=1e-6)


def test_training_items_are_decoded_at_load_size(facades_dir):
    dataset = build_dataset(tiny_config(task="facades", data=str(facades_dir)), "train", True)
    assert len(dataset) == 6
    assert dataset.items[0].source.dtype == torch.uint8 and dataset.items[0].source.shape == (3, 136, 136)
    assert dataset[0]["input"].shape == (3, 128, 128)
    assert -1.0 <= dataset[0]["input"].min() and dataset[0]["input"].max() <= 1.0


def test_paired_folders(tmp_path):
    rng = np.random.default_rng(0)
    for sub in ("A", "B"):
        (tmp_path / "train" / sub).mkdir(parents=True)
    for name in ("one", "two", "three"):
        for sub in ("A", "B"):
            Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(tmp_path / "train" / sub / f"{name}.png")
    Image.new("RGB", (8, 8)).save(tmp_path / "train" / "A" / "unmatched.png")
    dataset = build_dataset(tiny_config(task="paired", data=str(tmp_path)), "train", True)
    assert len(dataset) == 3
    assert sorted(i.name for i in dataset.items) == ["one.png", "three.png", "two.png"]


@pytest.mark.parametrize("task", ["facades", "colorize", "paired"])
def test_limit_decodes_only_the_first_images(tmp_path, facades_dir, food_dir, task):
    """`test --limit N` on a big split decodes N images, not all of them: a broken file after the first N
    is never opened (no skip warning), and the items are the first N in file-name order."""
    if task == "paired":
        for sub in ("A", "B"):
            (tmp_path / "val" / sub).mkdir(parents=True)
            for name in ("a", "b", "c"):
                Image.new("RGB", (40, 40), (200, 10, 10)).save(tmp_path / "val" / sub / f"{name}.png")
            (tmp_path / "val" / sub / "z.png").write_bytes(b"not a png")
        data = tmp_path
    else:
        data = tmp_path / "data"
        shutil.copytree(facades_dir if task == "facades" else food_dir, data)
        (data / "val" / "zz_broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    config = tiny_config(task=task, data=str(data))
    seen = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a skipped (broken) image would warn
        items = load_items(config, "val", train=False, progress=lambda done, total: seen.append(total), limit=2)
    with pytest.warns(UserWarning, match="skipped 1"):  # without the limit the broken file is read
        every = [i.name for i in load_items(config, "val", train=False)]
    assert [i.name for i in items] == every[:2] and set(seen) == {2}
    # a seeded sample (the colour floor's train photos): the same for a seed, in file-name order
    for broken in [*data.rglob("z.png"), *data.rglob("zz_broken.jpg")]:
        broken.unlink()
    names = [i.name for i in load_items(config, "val", train=False, limit=2, sample_seed=5)]
    assert names == [i.name for i in load_items(config, "val", train=False, limit=2, sample_seed=5)]
    assert len(names) == 2 and names == sorted(names, key=every.index)
    samples = {tuple(i.name for i in load_items(config, "val", train=False, limit=2, sample_seed=seed))
               for seed in range(8)}
    assert len(samples) > 1  # a sample, not the first two
    assert len(load_items(tiny_config(task=task, data=str(data), max_images=1), "val", train=True, limit=2)) == 2


@pytest.mark.parametrize("task", ["colorize", "paired", "unpaired"])
def test_max_images_spreads_over_a_class_sorted_folder(tmp_path, task):
    """max_images took the first N files by name: datasets are often sorted by class (the food photos' first 100
    are all chicken curry), so the app's Quick demo (100 images) learnt one class's colour cast. It now takes N
    spread evenly over the file-name order, deterministic (a resume picks the same), and the Start check reads
    the same files; `test --limit` keeps the first N."""
    from pix2pix_core.data import build_unpaired_dataset
    from pix2pix_core.resources import training_files

    names = [f"{kind}_{i}" for kind in "ab" for i in range(10)]  # class-sorted: a_0..a_9, b_0..b_9
    folders = {"colorize": ["train"], "paired": ["train/A", "train/B"], "unpaired": ["trainA", "trainB"]}[task]
    for folder in folders:
        (tmp_path / folder).mkdir(parents=True)
        for name in names:
            Image.new("RGB", (16, 16), (200, 40 if name < "b" else 160, 40)).save(tmp_path / folder / f"{name}.png")
    config = tiny_config(task=task, data=str(tmp_path), max_images=4, load_size=16, crop_size=16)
    spread = ["a_0", "a_5", "b_0", "b_5"]
    if task == "unpaired":
        dataset = build_unpaired_dataset(config)
        picked = [[item.name.removesuffix(".png") for item in side.items] for side in (dataset.a, dataset.b)]
        assert picked == [spread, spread]
    else:
        picked = [item.name.removesuffix(".png") for item in load_items(config, "train", True)]
        assert picked == spread
        assert [i.name for i in load_items(config, "train", True, limit=3)] == ["a_0.png", "a_1.png", "a_2.png"]
    assert sorted({p.stem for p in training_files(config)}) == spread


def test_spread_evenly_keeps_order_and_takes_all_when_asked_for_as_many():
    from pix2pix_core.data import spread_evenly

    assert spread_evenly(range(20), 4) == [0, 5, 10, 15]
    assert spread_evenly(range(10), 4) == [0, 3, 5, 8]  # the nearest to 0, 2.5, 5, 7.5
    assert spread_evenly(range(5), None) == spread_evenly(range(5), 0) == spread_evenly(range(5), 9) == list(range(5))
    for total in range(1, 40):
        for count in range(1, total + 1):
            picked = spread_evenly(range(total), count)
            assert len(picked) == count and picked == sorted(set(picked)) and picked[0] == 0


def test_colorization_skips_gray_and_broken_files_with_a_warning(tmp_path):
    write_colour_photos(tmp_path, 3)
    Image.new("L", (64, 64), 128).save(tmp_path / "gray.jpg")
    Image.new("RGB", (64, 64), (90, 90, 90)).save(tmp_path / "gray_rgb.png")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.warns(UserWarning, match="skipped 3"):
        dataset = build_dataset(tiny_config(task="colorize", data=str(tmp_path)), "train", True)
    assert len(dataset) == 3
    sample = dataset[0]
    assert sample["input"].shape == (1, 128, 128) and sample["target"].shape == (2, 128, 128)


def test_lab_round_trip():
    rgb = torch.rand(2, 3, 32, 32)
    lightness, ab = rgb_to_lab_normalized(rgb)
    assert lightness.min() >= -1.0001 and lightness.max() <= 1.0001 and ab.abs().max() <= 1.2
    assert torch.allclose(lab_normalized_to_rgb(lightness, ab), rgb, atol=2e-3)


def test_lab_of_gray_has_no_colour():
    gray = pil_to_unit(Image.new("RGB", (8, 8), (120, 120, 120)))
    _, ab = rgb_to_lab_normalized(gray)
    assert ab.abs().max() < 1e-3


@pytest.mark.parametrize("setup,message", [
    (lambda p: p / "missing", "not found"),
    (lambda p: p, "no images"),
])
def test_clear_errors_for_bad_folders(tmp_path, setup, message):
    with pytest.raises(Pix2PixError, match=message):
        build_dataset(tiny_config(task="facades", data=str(setup(tmp_path))), "train", True)


def test_odd_width_aligned_image_is_refused(tmp_path):
    Image.new("RGB", (65, 32)).save(tmp_path / "odd.png")
    with pytest.raises(Pix2PixError, match=r"none of the 1 image\(s\) .* is usable: odd.png: 65x32 .*side-by-side"):
        build_dataset(tiny_config(task="facades", data=str(tmp_path)), "train", True)


def test_jitter_seeds_stay_in_torchs_range_and_unchanged_for_small_seeds() -> None:
    from pix2pix_core.data import jitter_seed

    assert jitter_seed(7, 3, 11) == (7 * 1_000_003 + 3) * 10_000_019 + 11  # runs made before keep their jitter
    for seed in (20_240_101, 2**63 - 1):
        torch.Generator().manual_seed(jitter_seed(seed, 199, 10**6))  # a date-like seed overflowed before


def test_a_date_like_seed_trains(facades_dir, tmp_path) -> None:
    config = tiny_config(data=str(facades_dir), out=str(tmp_path / "run"), seed=20_240_101, max_steps=2)
    assert Trainer(config).run().step == 2
    with pytest.raises(Pix2PixError, match="seed must be 0 to 2\\*\\*63 - 1"):
        tiny_config(seed=2**63).validate()


def test_a_missing_split_is_an_error_when_others_exist(facades_dir, tmp_path):
    """`test` on a dataset without val/ scored its training images and called them val."""
    from pix2pix_core.dataset_layout import split_folder

    only_train = tmp_path / "mine"
    shutil.copytree(facades_dir / "train", only_train / "train")
    with pytest.raises(Pix2PixError, match=r"no val/ in .*mine \(it has train/\)"):
        split_folder(only_train, "val")
    assert split_folder(only_train / "train", "val") == only_train / "train"  # a flat folder is itself


def test_data_that_looks_like_another_task_is_warned_about(facades_dir, food_dir):
    with pytest.warns(UserWarning, match="is --task colorize right"):
        load_items(tiny_config(task="colorize", data=str(facades_dir)), "val", train=False)
    with pytest.warns(UserWarning, match="is --task facades right"):
        load_items(tiny_config(task="facades", data=str(food_dir)), "val", train=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_items(tiny_config(task="facades", data=str(facades_dir)), "val", train=False)


def _pairs_of(folder, halves_a, halves_b, suffix=".png"):
    """A|B files from two lists of pictures of the same size."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, (a, b) in enumerate(zip(halves_a, halves_b)):
        pair = Image.new("RGB", (a.width + b.width, a.height))
        pair.paste(a, (0, 0))
        pair.paste(b, (a.width, 0))
        pair.save(folder / f"{i}{suffix}", **({"quality": 90} if suffix == ".jpg" else {}))
    return folder


def _label_messages(caught):
    return [str(w.message) for w in caught if "look like photos" in str(w.message)]


def test_own_pairs_trained_as_facades_are_warned_about(tmp_path):
    """Own A|B pairs (edges | photo) with no --task: the default facades snapped the photos to the 12 label
    colours without a word. Label halves that look like photos are warned about; label maps are not, whether
    JPEGs with blended edges (the dataset's), hand-drawn PNGs, or drawn with a soft brush."""
    from conftest import photo_from_labels, random_label_map
    from PIL import ImageFilter
    from pix2pix_core.palette import plain_facade

    photos = [Image.open(p).convert("RGB") for p in sorted(write_colour_photos(tmp_path / "photos", 5).iterdir())]
    own = _pairs_of(tmp_path / "own", photos[::-1], photos)  # photo | photo
    with pytest.warns(UserWarning, match=r"label maps \(right halves\) of .*own look like photos.*--task aligned"):
        load_items(tiny_config(task="facades", data=str(own)), "train", train=False)
    with pytest.warns(UserWarning, match="but the model runs/mine is a facades one: is --data"):
        load_items(tiny_config(task="facades", data=str(own)), "train", train=False, model="runs/mine")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_items(tiny_config(task="aligned", data=str(own)), "train", train=False)  # any pictures are fine

    rng = np.random.default_rng(0)
    maps = [random_label_map(rng, 64) for _ in range(3)] + [plain_facade((64, 64))]
    maps += [maps[0].filter(ImageFilter.GaussianBlur(1)), maps[1].resize((64, 64), Image.BICUBIC)]
    for suffix in (".png", ".jpg"):
        drawn = _pairs_of(tmp_path / f"drawn{suffix}", [photo_from_labels(m, rng) for m in maps], maps, suffix)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            load_items(tiny_config(task="facades", data=str(drawn)), "train", train=False)


def test_paired_files_without_a_partner_are_counted_and_named(tmp_path):
    """A/ im0-3.png, B/ im0.jpg, im1.jpg, other2.png, other3.png: trained on 2 pairs, nothing said."""
    for sub in ("A", "B"):
        (tmp_path / sub).mkdir()
    for i in range(4):
        Image.new("RGB", (40, 40), (40 * i, 90, 10)).save(tmp_path / "A" / f"im{i}.png")
        Image.new("RGB", (40, 40), (10, 90, 40 * i)).save(tmp_path / "B" / (f"im{i}.jpg" if i < 2 else f"other{i}.png"))
    with pytest.warns(UserWarning, match=r"paired: 2 of 4 files in .*A have a partner in .*B \(matched by name "
                                         r"without extension\); left out, with no partner: im2.png, im3.png in A/; "
                                         r"other2.png, other3.png in B/$"):
        items = load_items(tiny_config(task="paired", data=str(tmp_path)), "train", train=False)
    assert [i.name for i in items] == ["im0.png", "im1.png"]
    for path in (tmp_path / "B").glob("im*"):
        path.rename(path.with_name("x" + path.name))
    with pytest.raises(Pix2PixError, match=r"no file names match .*matched by name without extension: e.g. "
                                           r"A/im0.png, B/other2.png"):
        load_items(tiny_config(task="paired", data=str(tmp_path)), "train", train=False)


def test_paired_names_with_several_files_are_refused(tmp_path):
    """B/ im1.jpg and im1.png, A/ im2.jpg and im2.png: one was kept (or both paired with one partner), without a
    word, so the run trained on a pair nobody chose. Files without a partner may share a name: they are not used."""
    for sub in ("A", "B"):
        (tmp_path / sub).mkdir()
    files = {"A": ["im0.png", "im1.png", "im2.jpg", "im2.png", "im3.png", "im4.png", "im5.png"],
             "B": ["im0.png", "im1.jpg", "im1.png", "im2.png", "im3.gif", "im3.png", "im4.jpg", "im4.png",
                   "x.jpg", "x.png"]}
    for sub, names in files.items():
        for i, name in enumerate(names):
            Image.new("RGB", (40, 40), (30 * i, 90, 10)).save(tmp_path / sub / name)
    with pytest.raises(Pix2PixError) as caught:
        load_items(tiny_config(task="paired", data=str(tmp_path)), "train", train=False)
    assert str(caught.value) == (
        f"paired: 4 names in {tmp_path} have more than one file, so which one is paired is not clear (pairs are "
        "matched by name without extension): im2.jpg, im2.png in A/; im1.jpg, im1.png in B/; im3.gif, im3.png in "
        "B/; and 1 more; keep one file of each name in A/ and in B/")
    for name in ("im2.jpg", "im1.jpg", "im3.gif", "im4.jpg"):
        (tmp_path / ("A" if name == "im2.jpg" else "B") / name).unlink()
    with pytest.warns(UserWarning, match=r"left out, with no partner: im5.png in A/; x.jpg, x.png in B/$"):
        items = load_items(tiny_config(task="paired", data=str(tmp_path)), "train", train=False)
    assert [i.name for i in items] == ["im0.png", "im1.png", "im2.png", "im3.png", "im4.png"]


def test_a_batch_larger_than_the_training_set_is_warned_about(facades_dir):
    with pytest.warns(UserWarning, match="batch size 32 is larger than the 6 training images: every batch holds 6"):
        build_dataset(tiny_config(task="facades", data=str(facades_dir), batch_size=32), "train", True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build_dataset(tiny_config(task="facades", data=str(facades_dir), batch_size=6), "train", True)
        build_dataset(tiny_config(task="facades", data=str(facades_dir), batch_size=32), "val", False)  # not trained


def test_under_torchrun_the_batch_is_compared_with_one_process_s_share(facades_dir):
    """Each of N processes trains on len / N images (rounded up: DistributedSampler pads), so batch size 4 on 6
    images over 2 processes holds 3, and was not warned about."""
    config = tiny_config(task="facades", data=str(facades_dir), batch_size=4)
    with pytest.warns(UserWarning) as caught:
        build_dataset(config, "train", True, world_size=2)
    assert [str(w.message) for w in caught] == [
        "batch size 4 is larger than the 3 training images each of 2 processes gets (6 shared out by torchrun): "
        "every batch holds 3, while the run records 4; use --batch-size 3 or less"]
    with pytest.warns(UserWarning, match="larger than the 2 training images each of 4 processes gets"):
        build_dataset(config, "train", True, world_size=4)  # 6 over 4: 2 each, two repeated
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build_dataset(tiny_config(task="facades", data=str(facades_dir), batch_size=3), "train", True, world_size=2)
        build_dataset(config, "train", True)  # one process: all 6
    for count, world_size in ((6, 2), (6, 4), (7, 3), (1, 2), (5, 1)):  # the training loop's sampler agrees
        shares = {len(torch.utils.data.DistributedSampler(range(count), num_replicas=world_size, rank=rank,
                                                          shuffle=True, drop_last=False)) for rank in range(world_size)}
        assert shares == {rank_share(count, world_size)}


def test_the_hint_about_another_task_names_the_model_it_came_from(facades_dir):
    """`test` has no --task: the task comes from the model, so the data or the model is the mistake."""
    with pytest.warns(UserWarning) as caught:
        load_items(tiny_config(task="colorize", data=str(facades_dir)), "val", train=False, model="runs/col8")
    assert [str(w.message) for w in caught] == [f"most photos in {facades_dir / 'val'} are twice as wide as tall, "
                                                "like A|B pairs, but the model runs/col8 is a colorize one: is --data "
                                                "(or --checkpoint) the one you meant?"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_items(tiny_config(task="colorize", data=str(facades_dir)), "val", train=False, advise=False)


def test_skipped_files_are_named_up_to_three(tmp_path):
    write_colour_photos(tmp_path, 2)
    for name in ("a", "b", "c", "d", "e"):
        (tmp_path / f"{name}_broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.warns(UserWarning) as caught:
        build_dataset(tiny_config(task="colorize", data=str(tmp_path)), "train", True)
    message, = [str(w.message) for w in caught if "skipped" in str(w.message)]
    assert message.startswith("skipped 5 unusable image(s): ")
    assert [f"{name}_broken.jpg" in message for name in "abcde"] == [True] * 3 + [False] * 2
    assert message.endswith("; and 2 more")


def test_aligned_files_not_shaped_like_pairs_are_named(tmp_path, facades_dir):
    """A square photo, 20x20, 3000x30 in an aligned folder: even widths, so each was cut in half and used."""
    folder = tmp_path / "mine"
    shutil.copytree(facades_dir / "train", folder)
    rng = np.random.default_rng(0)
    for name, (width, height) in {"square.png": (64, 64), "tiny.png": (20, 20), "wide.png": (3000, 30),
                                  "z_wide.png": (3000, 30)}.items():
        Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)).save(folder / name)
    Image.new("RGB", (150, 64)).save(folder / "near.png")  # 2.34: two near-square halves, a pair
    with pytest.warns(UserWarning) as caught:
        items = load_items(tiny_config(task="aligned", data=str(folder)), "train", train=False)
    assert len(items) == 11
    assert [str(w.message) for w in caught] == [
        f"4 of 11 images in {folder} are not about twice as wide as tall, so not A|B pairs, yet each is cut in half "
        "and used: square.png (64x64), tiny.png (20x20), wide.png (3000x30), and 1 more; move them out unless they "
        "are pairs"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_items(tiny_config(task="aligned", data=str(facades_dir)), "train", train=False)


def test_training_without_a_train_split_says_what_training_reads(facades_dir, tmp_path):
    """The hint said "(test: --split)" to `train`, which has no --split."""
    shutil.copytree(facades_dir / "val", tmp_path / "val")
    with pytest.raises(Pix2PixError, match=r"no train/ in .* \(it has val/\): training reads train/; put the "
                                           r"training images there$"):
        build_dataset(tiny_config(task="facades", data=str(tmp_path)), "train", True)


@pytest.mark.parametrize("layout, hint", [("Train", "split folders are lower case"),
                                          ("wrapped/train", "images are in its sub-folder wrapped/")])
def test_a_folder_without_images_says_where_they_are(tmp_path, layout, hint):
    """"no images found in X" said nothing when X held Train/ (case) or the dataset one folder down."""
    from conftest import tiny_config, write_colour_photos

    write_colour_photos(tmp_path / "data" / layout, 2)
    config = tiny_config(task="colorize", data=str(tmp_path / "data"))
    with pytest.raises(Pix2PixError, match=f"no images found in .*{hint}"):
        load_items(config, "train", True)


PAIRED = "A/ and B/: paired data, for the paired task"
IMAGES = "it holds images: A|B pairs or photos, for the facades, aligned or colorize task"


@pytest.mark.parametrize("task, layout, hint", [
    ("facades", ["train/A", "train/B"], f"no images found in DATA/train (it holds {PAIRED})"),
    ("colorize", ["A", "B"], f"no images found in DATA (it holds {PAIRED})"),
    ("aligned", ["set/train/A", "set/train/B"], f"no images found in DATA (its sub-folder set/ holds {PAIRED}; give "
                                                "that folder as the data)"),
    ("colorize", ["h2z/trainA", "h2z/trainB"], "no images found in DATA (its sub-folder h2z/ holds trainA/ and "
                                               "trainB/: unpaired collections, for the unpaired (CycleGAN) task; give "
                                               "that folder as the data)"),
    ("paired", ["train"], f"paired data needs sub-folders A/ and B/ in DATA/train ({IMAGES})"),
    ("paired", ["."], f"paired data needs sub-folders A/ and B/ in DATA ({IMAGES})"),
    ("paired", ["trainA", "trainB"], "paired data needs sub-folders A/ and B/ in DATA (it holds trainA/ and trainB/: "
                                     "unpaired collections, for the unpaired (CycleGAN) task)"),
    ("paired", ["set/A", "set/B"], "paired data needs sub-folders A/ and B/ in DATA (its sub-folder set/ holds A/ and "
                                   "B/: give that folder as the data)"),
    ("paired", ["a", "b"], "paired data needs sub-folders A/ and B/ in DATA (folder names are case-sensitive: A/ and "
                           "B/)"),
])
def test_train_on_another_task_s_layout_names_that_task(tmp_path, capsys, task, layout, hint):
    """Paired data (train/A/, train/B/) given to a task that reads images was told "images are in its sub-folders
    A/, B/: give that folder as the data", which one side alone cannot be; the paired task given images (or
    CycleGAN collections) said "needs sub-folders A/ and B/" and no more. Each names the task that reads it."""
    from pix2pix_core.cli import main

    data = tmp_path / "data"
    for folder in layout:
        write_colour_photos(data / folder, 1, size=16)
    assert main(["train", "--task", task, "--data", str(data), "--out", str(tmp_path / "run"), "--epochs", "1",
                 "--epochs-decay", "0", "--device", "cpu"]) == 2
    assert f"error: {hint.replace('DATA', str(data))}\n" in capsys.readouterr().err


@pytest.mark.parametrize("budget_mb", [1024, 0], ids=["in memory", "disk cache"])
def test_a_dataset_whose_every_file_is_skipped_says_why(tmp_path, budget_mb):
    """Odd-width A|B files (or any that cannot be used) were each a warning, then "the dataset is empty: no usable
    images found": the app showed only that line, after its dataset line had counted them as training images."""
    from PIL import Image

    train = tmp_path / "data" / "train"
    train.mkdir(parents=True)
    for i in range(4):
        Image.new("RGB", (63, 32), (i * 40, 90, 90)).save(train / f"{i}.png")
    config = tiny_config(task="aligned", data=str(tmp_path / "data"), memory_budget_mb=budget_mb,
                         cache_dir=str(tmp_path / "cache"))
    with pytest.raises(Pix2PixError, match=r"none of the 4 image\(s\) in .*train is usable: 0.png: 63x32 is not an "
                                           r"A\|B side-by-side pair .*and 1 more"):
        build_dataset(config, "train", True)
