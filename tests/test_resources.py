"""pix2pix_core.resources and .limits: the memory estimate, bounded numbers, and stopping while loading."""

from __future__ import annotations

import math
import threading

import pytest

from conftest import tiny_config, write_aligned
from pix2pix_core.config import TrainConfig
from pix2pix_core.data import build_dataset
from pix2pix_core.errors import LoadingStopped, Pix2PixError
from pix2pix_core.limits import SEED_MAX, bounded_float, bounded_int, seed_value
from pix2pix_core.networks import build_discriminator, build_generator
from pix2pix_core.resources import (available_memory, check_training_memory, count_training_images,
                                    estimate_training_memory)
from pix2pix_core.train import Trainer


def test_estimate_grows_with_width_batch_and_images():
    base = estimate_training_memory(tiny_config(), 10)
    assert base.total > base.overhead > 0
    assert estimate_training_memory(tiny_config(ngf=32), 10).parameters > 4 * base.parameters
    assert estimate_training_memory(tiny_config(batch_size=8), 10).activations > 3 * base.activations
    assert estimate_training_memory(tiny_config(), 1000).dataset == 1000 * 2 * 3 * 136 ** 2


def test_estimate_of_the_finding_1_run_is_tens_of_gigabytes_and_costs_nothing():
    """ngf 512 (finding 1): built on the meta device, so estimating it allocates no weights."""
    config = TrainConfig(netG="unet_128", crop_size=128, load_size=143, ngf=512, ndf=16)
    estimate = estimate_training_memory(config, 100)
    assert estimate.parameters > 40e9
    with pytest.raises(Pix2PixError, match=r"would need about .* GB .* above the memory budget of 8.00 GB"):
        check_training_memory(config, 100, budget=8_000_000_000)


def test_estimate_counts_the_batch_only_up_to_the_dataset():
    """batch_size 10**9 on 200 images trains on batches of 200 (finding 1)."""
    huge = estimate_training_memory(tiny_config(batch_size=10 ** 9), 200)
    assert huge == estimate_training_memory(tiny_config(batch_size=200), 200)


def test_dataset_of_20000_images_is_counted_at_load_size():
    """Finding 2: 20,000 small images decode to ~10 GB at 286 px; held in memory (a budget that large),
    the estimate says so before loading."""
    estimate = estimate_training_memory(TrainConfig(task="aligned", memory_budget_mb=20_000), 20_000)
    assert estimate.dataset == 20_000 * 2 * 3 * 286 ** 2 and not estimate.disk_cache


def test_a_dataset_above_the_memory_budget_is_read_from_the_disk_cache():
    """Above memory_budget_mb (1 GB by default) data.py streams the split through the disk cache and reads
    it item by item: the estimate counts no dataset then, and says where it is read from."""
    estimate = estimate_training_memory(TrainConfig(task="aligned"), 20_000)
    assert estimate.dataset == 0 and estimate.disk_cache
    assert "dataset read from the disk cache" in estimate.describe()
    just_under = 1024 * 2 ** 20 // (2 * 3 * 286 ** 2)  # images that still fit the default budget
    assert estimate_training_memory(TrainConfig(task="aligned"), just_under).dataset <= 1024 * 2 ** 20
    assert estimate_training_memory(tiny_config(memory_budget_mb=0), 10).dataset == 0


def test_the_estimate_follows_the_loaders_memory_or_cache_decision(tmp_path):
    write_aligned(tmp_path / "data" / "train", 3, size=32)
    for budget in (0, 1):  # 3 images at 136 px decode to 0.3 MB: above 0 MB, below 1 MB
        config = tiny_config(data=str(tmp_path / "data"), memory_budget_mb=budget, cache_dir=str(tmp_path / "cache"))
        items = build_dataset(config).items
        estimate = estimate_training_memory(config, 3)
        assert estimate.disk_cache == (not isinstance(items, list))
        assert estimate.dataset == (0 if estimate.disk_cache else sum(
            item.source.numel() + item.target.numel() for item in items))


def test_multi_scale_d_feature_matching_and_the_averaged_g_are_counted():
    base = estimate_training_memory(tiny_config(), 10)
    two_scales = estimate_training_memory(tiny_config(num_D=2), 10)
    three_scales = estimate_training_memory(tiny_config(num_D=3), 10)
    # a second PatchGAN of the same width (its weights), seeing a quarter of the pixels (its activations)
    assert base.parameters < two_scales.parameters < three_scales.parameters
    assert base.activations < two_scales.activations < three_scales.activations
    d_parameters = (two_scales.parameters - base.parameters) // 30
    assert d_parameters == sum(p.numel() for p in build_discriminator(tiny_config()).parameters())

    matched = estimate_training_memory(tiny_config(lambda_feat=10.0), 10)
    assert matched.activations > base.activations and matched.parameters == base.parameters
    assert estimate_training_memory(tiny_config(lambda_feat=10.0, use_gan=False), 10) == estimate_training_memory(
        tiny_config(use_gan=False), 10)  # no D in G's step, no features kept

    averaged = estimate_training_memory(tiny_config(ema_decay=0.999), 10)
    generator = build_generator(tiny_config())
    g_values = sum(t.numel() for t in (*generator.parameters(), *generator.buffers()))
    assert averaged.parameters - base.parameters == 8 * g_values
    assert averaged.activations == base.activations and averaged.total > base.total


def test_an_l1_only_run_counts_no_d():
    """--no-gan builds no D: the estimate counted its weights, its three passes and its weights in checkpoints."""
    from pix2pix_core.resources import BYTES_PER_PARAMETER

    base = estimate_training_memory(tiny_config(), 10)
    l1_only = estimate_training_memory(tiny_config(use_gan=False), 10)
    g_parameters = sum(p.numel() for p in build_generator(tiny_config()).parameters())
    d_parameters = sum(p.numel() for p in build_discriminator(tiny_config()).parameters())
    assert l1_only.parameters == BYTES_PER_PARAMETER * g_parameters
    assert l1_only.activations < base.activations and l1_only.total < base.total
    assert base.checkpoint - l1_only.checkpoint > 12 * d_parameters  # D's fp32 weights and two Adam moments


def test_colorize_datasets_hold_one_picture_per_image():
    assert estimate_training_memory(tiny_config(task="colorize"), 10).dataset == 10 * 3 * 136 ** 2


def test_estimate_counts_decoding_the_largest_source_images(tmp_path):
    """Every source file is decoded at full size before it is resized (two at once): six 7000 x 7000 photos
    took 0.80 GB where the estimate said 0.24 GB. The largest file's pixels come from the headers."""
    from PIL import Image

    from pix2pix_core.resources import largest_training_image_pixels

    (tmp_path / "train").mkdir()
    Image.new("RGB", (3000, 2000), (200, 120, 40)).save(tmp_path / "train" / "big.jpg")
    Image.new("RGB", (300, 200), (20, 120, 40)).save(tmp_path / "train" / "small.jpg")
    (tmp_path / "train" / "broken.jpg").write_bytes(b"not an image")
    config = tiny_config(task="colorize", data=str(tmp_path))
    largest = largest_training_image_pixels(config)
    assert largest == 3000 * 2000
    plain, decoding = estimate_training_memory(config, 2), estimate_training_memory(config, 2, largest)
    assert decoding.decoding == 2 * largest * 10 and decoding.total == plain.total + decoding.decoding
    assert "decoding the largest images 0.12 GB" in decoding.describe()
    facades = estimate_training_memory(tiny_config(data=str(tmp_path)), 2, largest)
    assert facades.decoding == 2 * largest * 26  # the label half is cleaned at full size
    with pytest.raises(Pix2PixError, match="above the memory budget"):
        check_training_memory(config, 2, budget=plain.total + decoding.decoding // 2, largest_pixels=largest)


def test_largest_image_is_read_from_the_files_the_run_decodes_only(tmp_path):
    """The Start check read the header of every file in the folder, also past max_images (the app's Quick demo
    trains on 100): a 20,000-image folder cost 20,000 header reads, and a huge photo the run never decodes
    raised its memory estimate. Paired data: the files of the max_images matched pairs the loader picks (spread
    evenly over the file-name order)."""
    from PIL import Image

    from pix2pix_core.resources import largest_training_image_pixels, training_files

    train = tmp_path / "train"
    train.mkdir()
    for name, size in (("a.jpg", (300, 200)), ("b.jpg", (3000, 2000)), ("c.jpg", (400, 200))):
        Image.new("RGB", size, (200, 120, 40)).save(train / name)
    config = tiny_config(task="colorize", data=str(tmp_path), max_images=2)
    assert [p.name for p in training_files(config)] == ["a.jpg", "c.jpg"]
    assert largest_training_image_pixels(config) == 400 * 200
    assert largest_training_image_pixels(tiny_config(task="colorize", data=str(tmp_path))) == 3000 * 2000

    paired = tmp_path / "paired"
    for side, names in (("A", ["1.png", "2.png", "3.png"]), ("B", ["2.jpg", "3.jpg", "9.jpg"])):
        (paired / "train" / side).mkdir(parents=True)
        for name in names:
            Image.new("RGB", (64, 64)).save(paired / "train" / side / name)
    files = training_files(tiny_config(task="paired", data=str(paired), max_images=1))
    assert [f"{p.parent.name}/{p.name}" for p in files] == ["A/2.png", "B/2.jpg"]


def test_available_memory_is_known_on_linux():
    assert available_memory() > 0


def test_count_training_images_reads_the_listing(tmp_path):
    write_aligned(tmp_path / "train", 5)
    assert count_training_images(tiny_config(data=str(tmp_path))) == 5
    assert count_training_images(tiny_config(data=str(tmp_path), max_images=3)) == 3
    with pytest.raises(Pix2PixError, match="sub-folders A/ and B/"):
        count_training_images(tiny_config(task="paired", data=str(tmp_path)))


@pytest.mark.parametrize("value, message", [
    (1e300, "between 0 and 1,000"), (float("nan"), "finite"), (float("inf"), "finite"), (2 ** 70, r"about 10\^21"),
    (-1, "between"), (2.5, "whole number"), ("12", "must be a number"), (True, "must be a number"),
    ([1], "must be a number"), (None, "must be a number"),
])
def test_bounded_int_refuses_with_one_line(value, message):
    with pytest.raises(Pix2PixError, match=message) as error:
        bounded_int("epochs", value, 0, 1000)
    assert "\n" not in str(error.value) and len(str(error.value)) < 120


def test_bounded_numbers_accept_what_forms_send():
    assert bounded_int("epochs", 20.0, 0, 1000) == 20 and isinstance(bounded_int("epochs", 20.0, 0, 1000), int)
    assert bounded_float("lr", 2e-4, 0, 1, low_open=True) == 2e-4
    with pytest.raises(Pix2PixError, match="lr must be in"):
        bounded_float("lr", 0, 0, 1, low_open=True)
    with pytest.raises(Pix2PixError, match="lr must be in"):
        bounded_float("lr", 10 ** 400, 0, 1)
    assert seed_value(None) == 0 and seed_value(SEED_MAX) == SEED_MAX
    with pytest.raises(Pix2PixError, match="seed must be between"):
        seed_value(2 ** 70)


def test_config_refuses_non_finite_rates():
    with pytest.raises(Pix2PixError, match="finite"):
        tiny_config(lr=math.inf).validate()


def test_loading_stops_when_asked(tmp_path):
    write_aligned(tmp_path / "train", 60, size=32)
    stop = threading.Event()
    stop.set()
    with pytest.raises(LoadingStopped):
        build_dataset(tiny_config(data=str(tmp_path), load_size=32, crop_size=32), stop=stop)


def test_trainer_stopped_while_loading_ends_as_stopped_at_step_0(tmp_path):
    write_aligned(tmp_path / "data" / "train", 60, size=32)
    events = []
    trainer = Trainer(tiny_config(data=str(tmp_path / "data"), out=str(tmp_path / "run"), netG="resnet_6blocks",
                                  load_size=32, crop_size=32), callbacks=[events.append])
    trainer.stop()
    result = trainer.run()
    assert (result.reason, result.step, result.checkpoint) == ("stopped", 0, None)
    assert "loading" in result.message and events[-1] is result


def test_a_containers_memory_limit_caps_the_available_memory(tmp_path):
    """In Docker or on a hosted Space the host's MemAvailable is far above the container's limit: a run
    estimated to fit was killed instead of refused."""
    from pix2pix_core.resources import container_memory_left

    v2 = (tmp_path / "memory.max", tmp_path / "memory.current", tmp_path / "memory.stat")
    v2[0].write_text("4294967296\n")
    v2[1].write_text(f"{int(3.9 * 2**30)}\n")  # 3.9 GiB used, 3.3 GiB of it page cache the kernel can take back
    v2[2].write_text(f"anon 1\ninactive_file {int(3.3 * 2**30)}\nactive_file 5\n")
    v2_files = [(*map(str, v2), "inactive_file")]
    assert container_memory_left(v2_files) == pytest.approx(3.4 * 2**30, rel=1e-6)
    v2[2].unlink()  # no stat file: the plain difference
    assert container_memory_left(v2_files) == pytest.approx(0.1 * 2**30, rel=1e-3)
    v2[0].write_text("max\n")
    assert container_memory_left(v2_files) is None
    v1 = (tmp_path / "limit_in_bytes", tmp_path / "usage_in_bytes")
    v1[0].write_text(str(2**63 - 4096))  # v1's "no limit"
    v1[1].write_text("5")
    assert container_memory_left([(*map(str, v1), str(tmp_path / "stat"), "total_inactive_file")]) is None
    missing = str(tmp_path / "none")
    assert container_memory_left([(missing, missing, missing, "inactive_file")]) is None
    assert 0 < available_memory()


def test_crops_too_small_for_the_networks_are_one_clear_error():
    """A 16 px crop leaves the default D a 1 x 1 map that its batch norm cannot normalise: that was a raw
    ValueError traceback from the memory estimate, before training started."""
    config = tiny_config(netG="resnet_6blocks", crop_size=16, load_size=18, batch_size=1)
    with pytest.raises(Pix2PixError, match="cannot run on 16 px crops"):
        estimate_training_memory(config, 2)


def test_a_crop_too_small_for_g_alone_names_no_d_under_no_gan():
    """--no-gan builds no D: the refusal names the network that could not run, not a D the run never has."""
    config = tiny_config(netG="unet_256", crop_size=16, load_size=18, batch_size=1, use_gan=False)
    with pytest.raises(Pix2PixError, match="^unet_256 G cannot run on 16 px crops"):
        estimate_training_memory(config, 2)
