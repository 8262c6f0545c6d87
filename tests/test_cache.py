"""The on-disk dataset cache: same batches as in memory, reused/rebuilt by file state, never half-trusted;
loading reports progress and can be stopped."""

import json
import os
import pickle
import shutil
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import hold_build_lock, tiny_config, write_aligned, write_colour_photos
from pix2pix_core import cache as disk_cache
from pix2pix_core import data as data_module
from pix2pix_core import file_lock
from pix2pix_core.data import CachedItems, _decode_stream, build_dataset, collate, load_items
from pix2pix_core.errors import Pix2PixError

REPO = Path(__file__).resolve().parents[1]


def _paired(root: Path, count: int = 4) -> Path:
    rng = np.random.default_rng(5)
    for sub in ("A", "B"):
        (root / "train" / sub).mkdir(parents=True)
    for i in range(count):
        for sub in ("A", "B"):
            Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(root / "train" / sub / f"{i}.png")
    return root


def _cached(config_kwargs: dict, cache_dir: Path) -> dict:
    return dict(config_kwargs, memory_budget_mb=0, cache_dir=str(cache_dir))


def _count_builds(monkeypatch) -> list:
    calls = []
    real = disk_cache.build_cache

    def counting(*args, **kwargs):
        calls.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(disk_cache, "build_cache", counting)
    return calls


def _same_batches(a, b, epochs=(0, 1, 2)) -> None:
    assert len(a) == len(b)
    for epoch in epochs:
        a.set_epoch(epoch)
        b.set_epoch(epoch)
        batch_a = collate([a[i] for i in range(len(a))])
        batch_b = collate([b[i] for i in range(len(b))])
        assert batch_a["name"] == batch_b["name"]
        assert torch.equal(batch_a["input"], batch_b["input"]) and torch.equal(batch_a["target"], batch_b["target"])


@pytest.mark.parametrize("task", ["facades", "colorize", "paired"])
@pytest.mark.parametrize("train", [True, False])
def test_cache_path_gives_bit_identical_items(tmp_path, facades_dir, food_dir, task, train):
    data = {"facades": facades_dir, "colorize": food_dir, "paired": None}[task]
    if data is None:
        data = _paired(tmp_path / "paired")
    kwargs = dict(task=task, data=str(data), direction="BtoA" if task == "facades" else "AtoB")
    split = "train" if train or task == "paired" else "val"
    in_memory = build_dataset(tiny_config(**kwargs), split, train)
    cached = build_dataset(tiny_config(**_cached(kwargs, tmp_path / "cache")), split, train)
    assert isinstance(in_memory.items, list) and isinstance(cached.items, CachedItems)
    _same_batches(in_memory, cached, epochs=(0, 1, 2) if train else (0,))
    for mine, theirs in zip(in_memory.items, cached.items):
        assert torch.equal(mine.source, theirs.source)
        assert (mine.target is None and theirs.target is None) or torch.equal(mine.target, theirs.target)


def test_cached_dataset_survives_pickling_and_slicing(tmp_path, facades_dir):
    """DataLoader workers get a pickled copy; cached items slice like a list."""
    config = tiny_config(**_cached(dict(task="facades", data=str(facades_dir)), tmp_path))
    dataset = build_dataset(config, "train", True)
    dataset.set_epoch(3)
    copy = pickle.loads(pickle.dumps(dataset))
    assert torch.equal(copy[4]["input"], dataset[4]["input"])
    items = load_items(config, "train", True)
    head = items[:2]
    assert len(head) == 2 and [i.name for i in head] == [items[0].name, items[1].name]
    assert torch.equal(items[-1].source, items[len(items) - 1].source)
    with pytest.raises(IndexError):
        items[len(items)]


def test_unpickled_cache_keeps_the_descriptors_it_checked(tmp_path, facades_dir, monkeypatch):
    """A spawned worker's copy opens each side once, through `open_cache`'s check: reopening after the check
    could open a build that replaced the folder in between."""
    config = tiny_config(**_cached(dict(task="facades", data=str(facades_dir)), tmp_path))
    items = load_items(config, "train", True)
    assert isinstance(items, CachedItems)
    opened = []
    real_open = os.open
    monkeypatch.setattr(os, "open", lambda path, *args, **kw: opened.append(path) or real_open(path, *args, **kw))
    copy = pickle.loads(pickle.dumps(items.cache))
    assert len(opened) == copy.sides == 2
    for a, b in zip(copy.read(1), items.cache.read(1)):
        assert np.array_equal(a, b)
    copy.close()


def test_cache_files_are_plain_uint8_arrays(tmp_path, facades_dir):
    config = tiny_config(**_cached(dict(task="facades", data=str(facades_dir)), tmp_path))
    items = load_items(config, "train", True)
    (folder,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert sorted(p.name for p in folder.iterdir()) == ["meta.json", "source.u8", "target.u8"]
    source = np.memmap(folder / "source.u8", np.uint8, "r", shape=(len(items), 3, 136, 136))
    assert np.array_equal(source[2], items[2].source.numpy())


def test_cache_is_reused_when_unchanged_and_rebuilt_when_a_file_changes(tmp_path, monkeypatch):
    data = write_aligned(tmp_path / "data" / "train", 4, seed=7).parent
    builds = _count_builds(monkeypatch)
    config = tiny_config(**_cached(dict(task="facades", data=str(data)), tmp_path / "cache"))
    first = build_dataset(config, "train", True)
    second = build_dataset(config, "train", True)
    assert len(builds) == 1
    _same_batches(first, second, epochs=(0,))

    # a file changes (new content, new mtime): the cache is rebuilt and shows the new pixels
    changed = data / "train" / "2.jpg"
    Image.new("RGB", (128, 64), (200, 10, 10)).save(changed, quality=95)
    os.utime(changed, ns=(changed.stat().st_atime_ns, changed.stat().st_mtime_ns + 10**9))
    third = build_dataset(config, "train", True)
    assert len(builds) == 2
    _same_batches(build_dataset(tiny_config(task="facades", data=str(data)), "train", True), third, epochs=(0,))

    # a file added: rebuilt, and the old folder replaced rather than kept beside it
    shutil.copy(changed, data / "train" / "5.jpg")
    assert len(build_dataset(config, "train", True)) == 5 and len(builds) == 3
    assert len(list((tmp_path / "cache").iterdir())) == 1

    # another load size or direction is another cache
    build_dataset(tiny_config(**_cached(dict(task="facades", data=str(data), load_size=140), tmp_path / "cache")))
    assert len(builds) == 4 and len(list((tmp_path / "cache").iterdir())) == 2


@pytest.mark.parametrize("damage", ["truncated", "no_meta", "incomplete", "other_key"])
def test_a_damaged_cache_is_not_trusted(tmp_path, facades_dir, monkeypatch, damage):
    config = tiny_config(**_cached(dict(task="facades", data=str(facades_dir)), tmp_path))
    expected = build_dataset(tiny_config(task="facades", data=str(facades_dir)), "train", True)
    build_dataset(config, "train", True)
    (folder,) = list(tmp_path.iterdir())
    if damage == "truncated":
        with open(folder / "target.u8", "r+b") as handle:
            handle.truncate(folder.joinpath("target.u8").stat().st_size - 1000)
    elif damage == "no_meta":
        (folder / "meta.json").unlink()
    else:
        meta = (folder / "meta.json").read_text()
        old = '"complete": true' if damage == "incomplete" else '"key": "'
        assert old in meta
        (folder / "meta.json").write_text(meta.replace(old, '"complete": false' if damage == "incomplete" else old + "0"))
    builds = _count_builds(monkeypatch)
    _same_batches(expected, build_dataset(config, "train", True), epochs=(0,))
    assert len(builds) == 1


def test_a_killed_build_leaves_nothing_trusted(tmp_path, facades_dir, monkeypatch):
    """SIGKILL in the middle of writing the cache: the next load ignores the partial folder, rebuilds, cleans up."""
    script = (
        "import os, signal, sys\n"
        "from pix2pix_core.config import TrainConfig\n"
        "from pix2pix_core.data import build_dataset\n"
        "def progress(done, total):\n"
        "    if done == 3:\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        f"config = TrainConfig(task='facades', data={str(facades_dir)!r}, load_size=136, crop_size=128,"
        f" memory_budget_mb=0, cache_dir={str(tmp_path)!r})\n"
        "build_dataset(config, 'train', True, progress=progress)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, timeout=120)
    assert result.returncode == -9, result.stderr.decode()[-2000:]
    leftovers = list(tmp_path.iterdir())
    assert any(".partial-" in p.name for p in leftovers)  # a partial folder and its lock file, never a cache
    assert all(".partial-" in p.name or p.name.endswith(".lock") for p in leftovers)
    builds = _count_builds(monkeypatch)
    config = tiny_config(**_cached(dict(task="facades", data=str(facades_dir)), tmp_path))
    _same_batches(build_dataset(tiny_config(task="facades", data=str(facades_dir))), build_dataset(config), epochs=(0,))
    assert len(builds) == 1
    assert [p for p in tmp_path.iterdir() if ".partial-" in p.name] == []  # the dead build's folder is gone
    assert len(list(tmp_path.iterdir())) == 1  # and its lock file: only the cache is left


@pytest.mark.parametrize("budget", [1024, 0], ids=["in_memory", "cache"])
def test_stop_event_stops_loading(tmp_path, facades_dir, budget):
    config = tiny_config(task="facades", data=str(facades_dir), memory_budget_mb=budget, cache_dir=str(tmp_path))
    stop = threading.Event()
    seen = []

    def progress(done, total):
        seen.append(done)
        if done == 2:
            stop.set()

    with pytest.raises(Pix2PixError, match="stopped while loading"):
        build_dataset(config, "train", True, progress=progress, stop=stop)
    assert seen == [1, 2]  # checked between images: nothing decoded is reported after the stop
    assert not [p for p in tmp_path.iterdir()]  # a stopped cache build leaves nothing behind

    with pytest.raises(Pix2PixError, match="stopped while loading"):  # already set: stops at once
        load_items(config, "train", True, stop=stop)
    with pytest.raises(Pix2PixError, match="stopped while loading"):  # a callable works too
        load_items(config, "train", True, stop=lambda: True)
    assert len(load_items(config, "train", True, stop=lambda: False)) == 6


@pytest.mark.parametrize("budget", [1024, 0], ids=["in_memory", "cache"])
def test_progress_callback_reports_every_image(tmp_path, facades_dir, budget):
    config = tiny_config(task="facades", data=str(facades_dir), memory_budget_mb=budget, cache_dir=str(tmp_path))
    calls = []
    build_dataset(config, "train", True, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(i, 6) for i in range(1, 7)]
    if budget == 0:  # a reused cache reports done at once
        calls.clear()
        build_dataset(config, "train", True, progress=lambda done, total: calls.append((done, total)))
        assert calls == [(6, 6)]


def test_decoding_streams_a_few_images_ahead_only(tmp_path):
    """The cache build never holds the whole split: the decoder runs at most a few images ahead."""
    write_colour_photos(tmp_path, 30, size=16)
    paths = sorted(tmp_path.iterdir())
    started = []

    def decode(path):
        started.append(path)
        return data_module.Item(path.name, torch.zeros(3, 2, 2, dtype=torch.uint8), None)

    stream = _decode_stream(paths, decode, "test", [])
    next(stream)
    threading.Event().wait(0.2)  # give the two threads every chance to run ahead
    assert len(started) <= 6
    assert len(list(stream)) == 29
    assert started == paths or sorted(started) == paths


def test_skipped_images_are_reported_again_when_the_cache_is_reused(tmp_path):
    data = tmp_path / "photos"
    write_colour_photos(data, 3)
    Image.new("L", (64, 64), 128).save(data / "gray.jpg")
    config = tiny_config(task="colorize", data=str(data), memory_budget_mb=0, cache_dir=str(tmp_path / "cache"))
    for _ in range(2):
        with pytest.warns(UserWarning, match="skipped 1"):
            assert len(build_dataset(config, "train", True)) == 3


def test_aligned_files_not_shaped_like_pairs_are_named_again_when_the_cache_is_reused(tmp_path, facades_dir,
                                                                                      monkeypatch):
    """The list was made while decoding, so a second run on the same cache said nothing about the same files."""
    folder = tmp_path / "mine"
    shutil.copytree(facades_dir / "train", folder)
    Image.new("RGB", (64, 64)).save(folder / "square.png")
    config = tiny_config(task="aligned", data=str(folder), memory_budget_mb=0, cache_dir=str(tmp_path / "cache"))
    said = []
    for _ in range(2):
        with pytest.warns(UserWarning) as caught:
            assert len(load_items(config, "train", train=True)) == 7
        said.append([str(w.message) for w in caught])
        monkeypatch.setattr(data_module, "open_image", None)  # the second run decodes nothing
    assert said[0] == said[1] == [f"1 of 7 images in {folder} are not about twice as wide as tall, so not A|B pairs, "
                                  "yet each is cut in half and used: square.png (64x64); move them out unless they "
                                  "are pairs"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_items(config, "train", train=True, advise=False)


def test_cache_root_and_budget_setting(tmp_path, monkeypatch):
    monkeypatch.delenv("PIX2PIX_CACHE", raising=False)
    assert disk_cache.cache_root() == Path.home() / ".cache" / "pix2pix_studio"
    monkeypatch.setenv("PIX2PIX_CACHE", str(tmp_path / "env"))
    assert disk_cache.cache_root() == tmp_path / "env"
    assert disk_cache.cache_root(str(tmp_path / "configured")) == tmp_path / "configured"
    with pytest.raises(Pix2PixError, match="memory_budget_mb"):
        tiny_config(memory_budget_mb=-1).validate()


def test_an_unwritable_cache_folder_is_a_clear_error(tmp_path, facades_dir):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    config = tiny_config(task="facades", data=str(facades_dir), memory_budget_mb=0, cache_dir=str(blocker / "cache"))
    with pytest.raises(Pix2PixError, match="could not write the dataset cache"):
        build_dataset(config, "train", True)


def _records(count: int, size: int = 8, value: int = 0):
    return [(f"{i}.png", [np.full((3, size, size), value + i, np.uint8)]) for i in range(count)]


def test_two_builds_of_one_cache_at_once_keep_the_first(tmp_path):
    """Two runs started together on one dataset both build its cache: the one that finishes second keeps
    the first's (same key) instead of pulling that folder from under a run that has not opened it yet."""
    path, key = tmp_path / "cache" / "food_train-abc", "k" * 64
    first = disk_cache.build_cache(path, key, _records(3), 3, sides=1, size=8)
    installed = (path / "source.u8").stat().st_ino
    second = disk_cache.build_cache(path, key, _records(3), 3, sides=1, size=8)
    assert (path / "source.u8").stat().st_ino == installed  # the folder the first run may be about to open stayed
    assert first.read(2)[0][0, 0, 0] == 2 and second.read(1)[0][0, 0, 0] == 1  # first's files were not removed
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # the second copy left nothing behind
    rebuilt = disk_cache.build_cache(path, "n" * 64, _records(2, value=7), 2, sides=1, size=8)  # another key: replaced
    assert len(rebuilt) == 2 and rebuilt.read(0)[0][0, 0, 0] == 7 and disk_cache.open_cache(path, key) is None
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # the old cache deleted once replaced


def test_two_samples_of_one_folder_never_read_each_others_pixels(tmp_path):
    """Both samples share the dataset's one cache folder; the second build replaced the first, whose reader
    then opened the new files: 19 of 20 items came back with another image's pixels under their names."""
    root = tmp_path / "food"
    write_colour_photos(root / "train", 12, seed=3)
    config = tiny_config(**_cached(dict(task="colorize", data=str(root)), tmp_path / "cache"))
    plain = tiny_config(task="colorize", data=str(root))
    first = load_items(config, "train", train=False, limit=5, sample_seed=0)
    second = load_items(config, "train", train=False, limit=7, sample_seed=1)
    assert isinstance(first, CachedItems) and isinstance(second, CachedItems)
    for items, seed, count in ((first, 0, 5), (second, 1, 7)):
        truth = load_items(plain, "train", train=False, limit=count, sample_seed=seed)
        assert [item.name for item in items] == [item.name for item in truth]
        assert all(torch.equal(a.source, b.source) for a, b in zip(items, truth))


def test_an_edit_that_restores_the_mtime_still_invalidates_the_cache(tmp_path):
    """`cp -p`, `rsync -t`, `touch -r` give an edited file its old size and mtime; ctime and inode change."""
    root = tmp_path / "food"
    write_colour_photos(root / "train", 3, seed=3)
    photo = root / "train" / "photo_0.jpg"
    before = disk_cache.files_digest(root, [photo])
    stat = photo.stat()
    data = bytearray(photo.read_bytes())
    data[len(data) // 2] ^= 0xFF  # an edit of the same size...
    photo.write_bytes(bytes(data))
    os.utime(photo, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # ...with the old mtime put back
    assert photo.stat().st_size == stat.st_size and photo.stat().st_mtime_ns == stat.st_mtime_ns
    assert disk_cache.files_digest(root, [photo]) != before
    assert "palette.py" in disk_cache._CODE_FILES  # facade label cleaning is part of the decoding
    assert "dataset_layout.py" in disk_cache._CODE_FILES  # its PAIR_RATIOS decide the cached notes


def test_a_cache_whose_meta_changes_while_opening_is_not_trusted(tmp_path, monkeypatch):
    """open_cache reads meta.json again after opening the files: a swap in between is caught."""
    root = tmp_path / "food"
    write_colour_photos(root / "train", 4, seed=3)
    config = tiny_config(**_cached(dict(task="colorize", data=str(root)), tmp_path / "cache"))
    items = load_items(config, "train", train=False)
    cache = items.cache
    real_init = disk_cache.DiskCache.__init__

    def swapped_meanwhile(self, path, meta):
        real_init(self, path, meta)
        (path / "meta.json").write_text(json.dumps({**meta, "names": list(reversed(meta["names"]))}))

    monkeypatch.setattr(disk_cache.DiskCache, "__init__", swapped_meanwhile)
    assert disk_cache.open_cache(cache.path, cache.meta["key"]) is None


try:
    import fcntl
except ImportError:  # Windows: builds are not locked
    fcntl = None
needs_flock = pytest.mark.skipif(fcntl is None, reason="build locks need fcntl.flock (POSIX)")

_SLOW_BUILDER = """
import sys, time
from pathlib import Path
import numpy as np
from pix2pix_core import cache
path, counter, me = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
(counter.parent / ("ready-" + me)).touch()
deadline = time.time() + 20
while len(list(counter.parent.glob("ready-*"))) < 2 and time.time() < deadline:  # start together
    time.sleep(0.005)
def records():
    for i in range(4):
        with open(counter, "a") as handle:
            handle.write(me + "\\n")
        time.sleep(0.1)
        yield f"{i}.png", [np.full((3, 16, 16), 10 + i, np.uint8)]
built = cache.build_cache(path, "k" * 64, records(), 4, sides=1, size=16)
print([int(built.read(i)[0][0, 0, 0]) for i in range(len(built))])
"""


@needs_flock
def test_two_processes_building_one_cache_decode_it_once(tmp_path):
    """Two runs on one dataset (or the ranks of a DDP run) start together: one decodes, the other waits
    for it and opens its cache; before, both decoded everything and one copy was thrown away."""
    path, counter = tmp_path / "cache" / "food_train-abc", tmp_path / "decoded"
    builders = [subprocess.Popen([sys.executable, "-c", _SLOW_BUILDER, str(path), str(counter), str(me)], cwd=REPO,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE) for me in range(2)]
    results = [builder.communicate(timeout=60) for builder in builders]
    assert all(builder.returncode == 0 for builder in builders), [err.decode()[-2000:] for _, err in results]
    assert [out for out, _ in results] == [b"[10, 11, 12, 13]\n"] * 2
    assert len(counter.read_text().split()) == 4  # each image decoded once in all
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no partial folder, no lock file left


@needs_flock
def test_a_load_waits_for_another_builder_says_so_and_opens_its_cache(tmp_path, capsys):
    root = tmp_path / "food"
    write_colour_photos(root / "train", 6, size=16, seed=3)
    config = tiny_config(**_cached(dict(task="colorize", data=str(root)), tmp_path / "cache"))
    expected = load_items(tiny_config(task="colorize", data=str(root)), "train", train=False)
    path = load_items(config, "train", train=False).cache.path
    aside = path.with_name("aside")
    path.rename(aside)  # as if another process were still building it

    holder = hold_build_lock(path)
    try:
        stop = threading.Event()
        stopped = []
        waiter = threading.Thread(target=lambda: stopped.append(_load_expecting_stop(config, stop)), daemon=True)
        waiter.start()
        _wait_for_text(capsys, f"waiting for another process building the dataset cache {path} (pid {holder.pid} ")
        stop.set()  # the loader's stop ends the wait
        waiter.join(10)
        assert stopped == ["stopped"]

        calls, loaded = [], []
        waiter = threading.Thread(target=lambda: loaded.append(load_items(
            config, "train", train=False, progress=lambda done, total: calls.append((done, total)))), daemon=True)
        waiter.start()
        _wait_for_text(capsys, "waiting for another process")
        aside.rename(path)  # the other build finishes...
    finally:
        holder.kill()  # ...and its process ends (a crash would release the lock just the same)
        holder.wait()
    waiter.join(10)
    (items,) = loaded
    assert calls == [(6, 6)]  # nothing decoded here: the other build's cache was opened
    assert [item.name for item in items] == [item.name for item in expected]
    assert all(torch.equal(a.source, b.source) for a, b in zip(items, expected))


def _load_expecting_stop(config, stop) -> str:
    try:
        load_items(config, "train", train=False, stop=stop)
    except Pix2PixError as exc:
        return "stopped" if "stopped while loading" in str(exc) else str(exc)
    return "not stopped"


def _wait_for_text(capsys, text: str, timeout_s: float = 10) -> None:
    seen = ""
    for _ in range(int(timeout_s / 0.02)):
        seen += capsys.readouterr().err
        if text in seen:
            return
        threading.Event().wait(0.02)
    raise AssertionError(f"{text!r} never appeared on stderr: {seen[-500:]!r}")


@needs_flock
def test_partial_folders_are_removed_by_their_lock_not_by_pid_or_age(tmp_path):
    """A cache folder shared by several hosts (NFS): a live builder's partial folder stays however old it
    is, a dead builder's goes at the next build even when its pid means a live process here."""
    root = tmp_path / "cache"
    root.mkdir()
    live = root / "live_train-aaa"
    holder = hold_build_lock(live)
    try:
        live_partial = root / f"live_train-aaa.partial-{holder.pid}-0123abcd"
        dead_partial = root / "dead_train-bbb.partial-1-4567cdef"  # pid 1: alive on this host, not the builder
        live_partial.mkdir()
        dead_partial.mkdir()
        hours_ago = time.time() - 7 * 3600  # a slow build of a large dataset, still running
        os.utime(live_partial, (hours_ago, hours_ago))
        disk_cache.build_cache(root / "other_train-ccc", "k" * 64, _records(2), 2, sides=1, size=8)
        assert live_partial.exists()
        assert not dead_partial.exists()
    finally:
        holder.kill()  # the live builder crashes: the kernel releases its lock...
        holder.wait()
    disk_cache.build_cache(root / "more_train-ddd", "k" * 64, _records(2), 2, sides=1, size=8)
    # ...and the next build removes its partial folder and lock file
    assert sorted(p.name for p in root.iterdir()) == ["more_train-ddd", "other_train-ccc"]


def test_without_fcntl_builds_are_unlocked_as_before(tmp_path, monkeypatch):
    """Windows has no fcntl: a build neither locks nor fails, and the atomic rename keeps it right."""
    monkeypatch.setattr(file_lock, "fcntl", None)
    path = tmp_path / "cache" / "food_train-abc"
    built = disk_cache.build_cache(path, "k" * 64, _records(3), 3, sides=1, size=8)
    assert built.read(2)[0][0, 0, 0] == 2
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_a_full_disk_while_taking_the_lock_does_not_keep_it(tmp_path, monkeypatch):
    """Writing the holder's 'pid ... on host' note failed (a full disk) after the lock was won: the locked
    descriptor leaked, and the same process's next build (the app's next Start) waited for itself forever."""
    import errno

    real_write = os.write

    def full_disk(fd, data):
        monkeypatch.setattr(disk_cache.os, "write", real_write)
        raise OSError(errno.ENOSPC, "No space left on device")

    def records(n):
        for i in range(n):
            yield f"{i}.png", [np.full((3, 8, 8), i, np.uint8)]

    path = tmp_path / "cache" / "food_train-abc"
    monkeypatch.setattr(disk_cache.os, "write", full_disk)
    try:
        disk_cache.build_cache(path, "k" * 64, records(2), 2, sides=1, size=8)
    except OSError:
        pass  # failing the build is fine; keeping the lock is not
    done = []
    again = threading.Thread(target=lambda: done.append(
        disk_cache.build_cache(path, "k" * 64, records(2), 2, sides=1, size=8)), daemon=True)
    again.start()
    again.join(10)
    assert done and len(done[0]) == 2, "the second build waited for the lock its own process kept"
    assert [p.name for p in path.parent.iterdir()] == ["food_train-abc"]  # no lock file left


@pytest.mark.parametrize("task", ["aligned", "paired", "colorize", "unpaired"])
def test_training_cache_folders_names_the_folders_the_loader_builds(tmp_path, task):
    """resources.training_cache_folders (the app keeps, counts and prunes those caches) names exactly the
    folders data.py's loader builds for a training set, whatever the layout."""
    from conftest import write_collection
    from pix2pix_core.resources import training_cache_folders

    data = tmp_path / "data"
    if task == "paired":
        _paired(data)
    elif task == "colorize":
        write_colour_photos(data / "train", 3)
    elif task == "unpaired":
        write_collection(data / "trainA", 3, (200, 40, 40), seed=1)
        write_collection(data / "trainB", 2, (40, 40, 200), seed=2)
    else:
        write_aligned(data, 3)  # a flat folder: split_folder falls back to data itself
    config = tiny_config(**_cached(dict(task=task, data=str(data), direction="BtoA", load_size=40, crop_size=32,
                                        netG="unet_32"), tmp_path / "cache"))
    build_dataset(config, "train", train=True)
    built = sorted(p for p in (tmp_path / "cache").iterdir() if p.is_dir())
    assert built and built == sorted(training_cache_folders(config))


def test_the_cache_estimate_decides_each_collection_apart(tmp_path):
    """A CycleGAN's larger collection above the memory budget and its smaller one below: the loader caches
    only the larger, and the estimate charged both, at the larger's size, even once that cache existed."""
    from conftest import write_collection
    from pix2pix_core.data import decoded_size
    from pix2pix_core.resources import dataset_cache_bytes

    data = tmp_path / "data"
    write_collection(data / "trainA", 40, (200, 40, 40), seed=1)
    write_collection(data / "trainB", 2, (40, 40, 200), seed=2)
    config = tiny_config(task="unpaired", model="cyclegan", netG="resnet_6blocks", data=str(data), load_size=300,
                         crop_size=256, memory_budget_mb=1, cache_dir=str(tmp_path / "cache"))
    assert dataset_cache_bytes(config, 40) == decoded_size(config, 40, 300)  # trainA only
    build_dataset(config, "train", train=True)
    assert len([p for p in (tmp_path / "cache").iterdir() if p.is_dir()]) == 1
    assert dataset_cache_bytes(config, 40) == 0  # reused
