"""The app's training job driven directly (no server): how a Start, a Stop and the end of a run interleave."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

import pytest

from conftest import tiny_config, write_aligned
from demo import state as state_module
from demo.state import AppState, TrainingJob
from pix2pix_core.errors import Pix2PixError


def wait_until_idle(job: TrainingJob, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while job.snapshot().active and time.monotonic() < deadline:
        time.sleep(0.05)
    return job.snapshot()


def test_a_crash_while_exporting_ends_the_run_as_failed(facades_dir, tmp_path, monkeypatch):
    """Only Pix2PixError and OSError were caught: any other error left the job 'running' for good, and every
    later Start was refused."""
    def broken_export(*args, **kwargs):
        raise RuntimeError("out of something")

    monkeypatch.setattr(state_module, "export_generator", broken_export)
    job = TrainingJob(tmp_path / "runs", tmp_path / "runs" / "models", on_model=lambda path: None)
    job.start(tiny_config(data=str(facades_dir), max_steps=1))
    ended = wait_until_idle(job)
    assert ended.phase == "failed" and "exporting its model crashed (RuntimeError)" in ended.message
    monkeypatch.undo()
    job.start(tiny_config(data=str(facades_dir), max_steps=1))  # not refused
    assert wait_until_idle(job).phase == "finished"


def test_stop_while_a_start_is_preparing_cancels_it(facades_dir, tmp_path):
    """Stop answered 'No training run is going.' while a Start unpacked its zip, and the run then started."""
    job = TrainingJob(tmp_path / "runs", tmp_path / "runs" / "models", on_model=lambda path: None)
    with pytest.raises(Pix2PixError, match="stopped before the run started"):
        with job.preparing("unpacking the uploaded dataset..."):
            assert job.snapshot().phase == "preparing" and job.snapshot().active
            with pytest.raises(Pix2PixError, match="another Start is still unpacking"):
                with job.preparing("a second Start"):
                    pass
            assert job.stop() == "Stopping before the run starts."
            job.start(tiny_config(data=str(facades_dir), max_steps=1))
    assert job.snapshot().phase == "stopped" and not job.snapshot().active
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_a_run_that_fails_while_loading_leaves_no_run_folder(tmp_path):
    """Every failed Start (an empty dataset) left an empty runs/<task>-<time> folder, which the runs folder's
    cap never removes (it holds no bytes); a run stopped while loading did too."""
    (tmp_path / "empty" / "train").mkdir(parents=True)
    (tmp_path / "runs").mkdir()
    job = TrainingJob(tmp_path / "runs", tmp_path / "runs" / "models", on_model=lambda path: None)
    job.start(tiny_config(data=str(tmp_path / "empty"), max_steps=1))
    ended = wait_until_idle(job)
    assert ended.phase == "failed" and "no images" in ended.message
    assert not any((tmp_path / "runs").iterdir())


def test_a_start_that_fails_while_preparing_shows_the_last_run_again(facades_dir, tmp_path):
    job = TrainingJob(tmp_path / "runs", tmp_path / "runs" / "models", on_model=lambda path: None)
    job.start(tiny_config(data=str(facades_dir), max_steps=1))
    finished = wait_until_idle(job)
    with pytest.raises(Pix2PixError, match="dataset folder not found"):
        with job.preparing("checking the settings..."):
            raise Pix2PixError("dataset folder not found: 'typo'")
    again = job.snapshot()
    assert (again.phase, again.run, again.model) == (finished.phase, finished.run, finished.model) == \
        ("finished", finished.run, finished.run)
    assert job.latest_run == finished.run


def test_the_data_command_never_shows_the_servers_own_path(tmp_path, monkeypatch):
    from demo.dataset_line import get_data_command

    state = AppState(tmp_path / "checkpoints", tmp_path / "data", tmp_path / "runs")
    monkeypatch.chdir(tmp_path)
    assert get_data_command(state, "facades") == "pix2pix data facades --out data/"
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")  # the data root is not below the server's folder
    shown = get_data_command(state, "facades")
    assert str(tmp_path) not in shown and shown == "pix2pix data facades --out <the app's --data-root>"


def test_the_registry_keeps_one_copy_and_never_caches_a_removed_model(facades_checkpoint, tmp_path, monkeypatch):
    """Two requests loading one model both cached their copy; a model removed by a prune during its load
    was put back in the cache."""
    import shutil

    from pix2pix_core.checkpoint import export_generator
    from demo.state import ModelRegistry

    folder = tmp_path / "models"
    folder.mkdir()
    export_generator(facades_checkpoint, folder / "tiny.safetensors")
    registry = ModelRegistry([folder], device="cpu")
    real_load = state_module.Translator.load

    def load_while_pruned(path, **kwargs):
        translator = real_load(path, **kwargs)
        shutil.move(str(path), str(tmp_path / "elsewhere.safetensors"))
        registry.refresh()  # a prune ran meanwhile
        return translator

    monkeypatch.setattr(state_module.Translator, "load", load_while_pruned)
    registry.translator("tiny", "facades")
    assert registry.names("facades") == [] and not registry._loaded
    monkeypatch.undo()
    shutil.move(str(tmp_path / "elsewhere.safetensors"), str(folder / "tiny.safetensors"))
    registry.refresh()
    first = registry.translator("tiny", "facades")
    assert registry.translator("tiny", "facades") is first and len(registry._loaded) == 1



def test_a_model_file_replaced_under_its_name_is_loaded_again(tmp_path):
    """The registry kept a loaded model by its name: a file exported again over it (as `export` refreshes a model
    file) went on translating with the old weights until the app restarted. A CycleGAN export of both directions
    replaced by one of A -> B only still translated B -> A with the old F."""
    from conftest import write_collection
    from demo.state import ModelRegistry
    from pix2pix_core.checkpoint import export_generator
    from pix2pix_core.config import cyclegan_config
    from pix2pix_core.train import Trainer

    data = tmp_path / "data"
    write_collection(data / "trainA", 2, (200, 60, 40), seed=1)
    write_collection(data / "trainB", 2, (40, 90, 210), seed=2)
    run = Trainer(cyclegan_config(data=str(data), out=str(tmp_path / "run"), netG="resnet_6blocks", ngf=8, ndf=8,
                                  crop_size=32, load_size=36, max_steps=1, sample_every=0, save_every=0,
                                  precision="fp32")).run()
    folder = tmp_path / "models"
    folder.mkdir()
    export_generator(run.checkpoint, folder / "cg.safetensors", direction="both")
    registry = ModelRegistry([folder], device="cpu")
    assert registry.translator("cg", "unpaired", "BtoA") is registry.translator("cg", "unpaired", "BtoA")
    export_generator(run.checkpoint, folder / "cg.safetensors", direction="AtoB")  # exported again over it
    with pytest.raises(Pix2PixError, match="holds the A -> B generator only"):
        registry.translator("cg", "unpaired", "BtoA")


# ------------------------------------------------------------------------------ dataset caches of app runs
def _handler(blocks, api_name: str):
    """An event handler of a built app, called in-process (no server)."""
    return next(fn.fn for fn in blocks.fns.values() if fn.api_name == api_name)


def _cache_files(*folders) -> list:
    """Every dataset-cache file or folder (finished, partial or a build lock) under `folders`."""
    found = []
    for folder in folders:
        if folder.exists():
            found += [p for p in folder.rglob("*") if p.name in ("meta.json", "source.u8", "target.u8")
                      or ".partial-" in p.name or p.name.endswith(".lock")]
    return found


@pytest.fixture
def cached_app(tmp_path, monkeypatch):
    """An app whose every training set goes to the disk cache, with PIX2PIX_CACHE in tmp_path: (state, start,
    stop, user cache, zip maker)."""
    import demo.train_settings as train_settings
    from demo.app import build_app

    user_cache = tmp_path / "user-cache"
    monkeypatch.setenv("PIX2PIX_CACHE", str(user_cache))
    monkeypatch.setattr(train_settings, "dataset_budget_mb", lambda *args: 0)  # 0 MB in memory: the disk cache
    write_aligned(tmp_path / "data" / "pairs" / "train", 4, seed=3)
    blocks = build_app(tmp_path / "checkpoints", tmp_path / "data", tmp_path / "runs", device="cpu",
                       train_memory_bytes=10 ** 9)
    train_start, train_stop = _handler(blocks, "train_start"), _handler(blocks, "train_stop")

    def start(data_zip=None, data_folder="", epochs=1, ngf=8, preset="Quick demo"):
        return train_start("aligned", data_folder, "AtoB", preset, epochs, 0, 1, 100.0, 2e-4, ngf, "from scratch",
                           data_zip)

    def make_zip(count: int, name: str = "pairs.zip"):
        import zipfile

        archive = tmp_path / name
        with zipfile.ZipFile(archive, "w") as writer:
            for path in sorted(write_aligned(tmp_path / f"{name}-pairs", count, seed=4).iterdir()):
                writer.write(path, f"pairs/{path.name}")
        return str(archive)

    yield blocks.app_state, start, train_stop, user_cache, make_zip
    blocks.app_state.job.stop()
    wait_until_idle(blocks.app_state.job)


def test_an_uploaded_datasets_cache_is_deleted_when_its_run_ends(cached_app, tmp_path, monkeypatch):
    """Each Start of a large zip left its disk cache (~1 GB; up to ~10 GB) in PIX2PIX_CACHE for good: keyed by
    the uniquely named unpacked folder, never reused, outside --runs-dir and never deleted. Whether the run
    finishes, is stopped, fails or is stopped while its cache is being built, nothing of it stays."""
    import gradio as gr

    import pix2pix_core.data as data_module
    from pix2pix_core.train import Trainer

    state, start, stop, user_cache, make_zip = cached_app
    archive = make_zip(4)
    open_at_removal = []
    real_remove = state_module.remove_quietly

    def remove_when_closed(path):
        """The trainer has closed the cache's files by then: an open file's space is freed only when it closes.
        Slow, as gigabytes are: the job must not say the run ended before its files are gone."""
        if Path("/proc/self/fd").is_dir():
            for fd in Path("/proc/self/fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd).startswith(str(path)):
                        open_at_removal.append(os.readlink(fd))
        time.sleep(0.3)
        real_remove(path)

    monkeypatch.setattr(state_module, "remove_quietly", remove_when_closed)

    def nothing_left():
        assert _cache_files(tmp_path) == []
        assert not state.uploads_dir.exists() or not any(state.uploads_dir.iterdir())
        assert open_at_removal == []

    (tmp_path / "bad.zip").write_bytes(b"not a zip")
    with pytest.raises(gr.Error, match="not a readable zip file"):  # refused while unpacking
        start(str(tmp_path / "bad.zip"))
    nothing_left()
    with pytest.raises(gr.Error, match="above the memory budget"):  # refused by the checks after unpacking
        start(archive, epochs=1, ngf=128, preset="Standard (paper)")
    nothing_left()

    assert start(archive).startswith("Started")  # finishes: 4 steps
    assert wait_until_idle(state.job).phase == "finished"
    nothing_left()

    assert start(archive, epochs=500).startswith("Started")  # stopped after a step
    deadline = time.monotonic() + 60
    while state.job.snapshot().step < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    in_use = _cache_files(tmp_path)
    assert any(p.name == "source.u8" for p in in_use), "the run did not train from the disk cache"
    assert not any(p.is_relative_to(user_cache) for p in in_use)  # PIX2PIX_CACHE is the command line's
    stop()
    assert wait_until_idle(state.job).phase == "stopped"
    nothing_left()

    def broken_step(self, batch):
        raise Pix2PixError("broken step")

    with monkeypatch.context() as patch:
        patch.setattr(Trainer, "train_step", broken_step)
        assert start(archive).startswith("Started")  # fails after its cache is built
        ended = wait_until_idle(state.job)
    assert ended.phase == "failed" and "broken step" in ended.message
    nothing_left()

    real_open = data_module.open_image

    def slow_open(path):
        time.sleep(0.1)
        return real_open(path)

    monkeypatch.setattr(data_module, "open_image", slow_open)
    assert start(make_zip(40, "slow.zip")).startswith("Started")  # stopped while its cache is being built
    deadline = time.monotonic() + 60
    while "loading 2/" not in state.job.snapshot().message and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _cache_files(tmp_path), "no cache was being built"
    stop()
    assert wait_until_idle(state.job).phase == "stopped"
    nothing_left()


def test_a_data_root_folders_cache_stays_in_the_runs_folder_and_is_reused(cached_app, tmp_path):
    """A typed folder's cache (reused while its files are unchanged) lives under --runs-dir, where the runs cap
    counts it, not in PIX2PIX_CACHE: the app's disk use stays within --runs-max-gb."""
    state, start, _stop, user_cache, _make_zip = cached_app
    assert start(data_folder="pairs").startswith("Started")
    assert wait_until_idle(state.job).phase == "finished"
    kept = _cache_files(tmp_path)
    assert kept and all(p.is_relative_to(state.runs_dir / "cache") for p in kept), kept
    built = {p: p.stat().st_mtime_ns for p in kept}
    assert start(data_folder="pairs").startswith("Started")
    assert wait_until_idle(state.job).phase == "finished"
    assert {p: p.stat().st_mtime_ns for p in _cache_files(tmp_path)} == built  # reused, not built again


def test_the_facades_tab_returns_its_pictures_as_files_never_rewritten(facades_checkpoint, tmp_path):
    """Gradio writes a PIL or array output to a cache file named by its content, rewriting that file in place:
    a result identical to one the browser was still fetching (Generate twice, a stroke that snaps to the same
    map) was cut short under it (h11 "Too little data for declared Content-Length" in the app's log). The tab
    returns files, which Gradio copies into its cache atomically; the same picture keeps its file (and URL),
    which is not written again, and they download as photo.png and labels.png (both were image.png)."""
    from demo.app import build_app
    from demo.facades_tab import editor_value
    from pix2pix_core.checkpoint import export_generator
    from pix2pix_core.palette import facade_classes
    from PIL import Image

    (tmp_path / "checkpoints").mkdir()
    export_generator(facades_checkpoint, tmp_path / "checkpoints" / "facades_tiny.safetensors")
    blocks = build_app(tmp_path / "checkpoints", tmp_path / "data", tmp_path / "runs", device="cpu")
    handlers = {fn.fn.__name__: fn.fn for fn in blocks.fns.values() if fn.fn is not None}
    facade = facade_classes()[1].rgb
    canvas = editor_value(Image.new("RGB", (256, 256), facade))
    first = handlers["on_generate"](canvas, None, 3)
    assert all(isinstance(path, str) and Path(path).is_file() for path in first), first
    assert [Path(path).name for path in first] == ["photo.png", "labels.png"]
    assert Image.open(first[1]).getpixel((5, 5)) == facade  # the snapped map, colours exact (PNG)
    written = [os.stat(path).st_ino for path in first]
    again = handlers["on_generate"](canvas, None, 3)  # the same map and seed: the same photo
    assert list(again) == list(first) and [os.stat(path).st_ino for path in again] == written
    other = handlers["on_generate"](canvas, None, 4)
    assert other[0] != first[0] and other[1] == first[1]
    cleared = handlers["on_clear"](None, 0)
    assert isinstance(cleared[0]["background"], str) and cleared[2] == cleared[0]["background"]
    assert all(isinstance(path, str) for path in cleared[1:3])
    _, *variation = handlers["on_variation"](canvas, None, 3)
    assert all(isinstance(path, str) for path in variation)


def test_result_files_older_than_their_age_are_removed():
    """Results are removed OUTPUT_MAX_AGE after they were written or last used, looked for at most every
    prune_every seconds (a look stats every file; each stroke writes two)."""
    from PIL import Image

    from demo.image_work import OUTPUT_MAX_AGE, OutputFiles

    picture = Image.new("RGB", (8, 8))
    outputs = OutputFiles(prune_every=3600)
    old = Path(outputs.save(picture, "photo"))
    os.utime(old, (time.time() - OUTPUT_MAX_AGE - 1,) * 2)
    kept = Path(outputs.save(picture, "photo"))
    assert old.exists() and kept.exists()  # not looked for yet
    by_content = Path(outputs.save_by_content(picture, "labels"))
    os.utime(by_content, (time.time() - OUTPUT_MAX_AGE - 1,) * 2)
    assert outputs.save_by_content(picture, "labels") == str(by_content)  # used again: kept from now on
    unused = Path(outputs.save_by_content(Image.new("RGB", (8, 8), "red"), "labels"))
    os.utime(unused, (time.time() - OUTPUT_MAX_AGE - 1,) * 2)
    outputs.prune_every = 0
    newest = Path(outputs.save(picture, "photo"))
    assert not old.exists() and kept.exists() and newest.exists() and by_content.exists()
    assert not unused.parent.exists()  # its content folder went with it


# ------------------------------------------------------------------------------ the form of a run, after a reload
SKIPPED = "(left as it is)"


def _shown(value):
    """A handler's output as (value, visible): gr.skip() is SKIPPED, a gr.update dict or a component its props."""
    if isinstance(value, dict) and value.get("__type__") == "update":
        return value.get("value", SKIPPED), value.get("visible", True)
    if hasattr(value, "visible") and hasattr(value, "value"):  # a component returned as an update (gr.Dropdown)
        return value.value, value.visible
    return value, True


def _page_load(blocks) -> dict:
    """What the page's load events write into the Train form, by elem_id or label: what a reload shows."""
    form = {"train-task", "train-data", "train-direction", "train-preset", "train-epochs", "Decay epochs", "Batch size",
            "train-lambda-l1", "Learning rate", "ngf (G width)", "train-start-from", "train-diff-augment",
            "train-dataset"}
    shown = {}
    for fn in blocks.fns.values():
        names = [getattr(c, "elem_id", None) or getattr(c, "label", None) for c in fn.outputs]
        if any(event == "load" for _, event in fn.targets) and form & set(names):
            values = fn.fn() if len(fn.outputs) > 1 else [fn.fn()]
            shown.update({name: _shown(value) for name, value in zip(names, values) if name in form})
    return shown


def test_a_page_opened_while_a_run_goes_shows_its_settings(facades_checkpoint, tmp_path):
    """A reload (or a second browser) during a run showed the run's live status beside the form's defaults, as if
    they were training. The page load now fills the form with the run's settings (a fine-tune's ngf is its
    model's, the folder relative to the data root, the fields of its task only) and leaves it alone when no run
    goes (idle, a Start still checking, a run that ended)."""
    import zipfile

    from conftest import write_collection
    from demo.app import build_app
    from pix2pix_core.checkpoint import export_generator

    (tmp_path / "checkpoints").mkdir()
    export_generator(facades_checkpoint, tmp_path / "checkpoints" / "facades_tiny.safetensors")  # ngf 8
    write_aligned(tmp_path / "data" / "pairs" / "train", 4, seed=3)
    write_collection(tmp_path / "data" / "red2blue" / "trainA", 3, (200, 40, 40), seed=1)
    write_collection(tmp_path / "data" / "red2blue" / "trainB", 2, (40, 40, 200), seed=2)
    blocks = build_app(tmp_path / "checkpoints", tmp_path / "data", tmp_path / "runs", device="cpu",
                       train_memory_bytes=10 ** 9)
    job, start = blocks.app_state.job, _handler(blocks, "train_start")

    def load_while_running(*settings) -> dict:
        assert start(*settings).startswith("Started")
        shown = _page_load(blocks)
        job.stop()
        assert not wait_until_idle(job).active
        return shown

    idle = _page_load(blocks)
    assert {name for name, shown in idle.items() if shown[0] != SKIPPED} == {"train-dataset"}, idle
    # typed as a path inside the data root; DiffAugment ticked; the preset and every number not the defaults
    shown = load_while_running("aligned", str(tmp_path / "data" / "pairs"), "BtoA", "Standard (paper)", 300, 7, 2,
                               25.0, 1e-4, 12, "from scratch", None, True)
    assert shown == {"train-task": ("aligned", True), "train-data": ("pairs", True),
                     "train-direction": ("BtoA", True), "train-preset": ("Standard (paper)", True),
                     "train-epochs": (300, True), "Decay epochs": (7, True), "Batch size": (2, True),
                     "train-lambda-l1": (25.0, True), "Learning rate": (1e-4, True), "ngf (G width)": (12, True),
                     "train-start-from": ("from scratch", True), "train-diff-augment": (True, True),
                     "train-dataset": (shown["train-dataset"][0], True)}
    assert "<code>pairs</code> in the data root, 4 training images" in shown["train-dataset"][0]
    assert str(tmp_path) not in str(shown)

    tuned = load_while_running("facades", "pairs", "AtoB", "Quick demo", 50, 0, 1, 100.0, 2e-4, 64, "facades_tiny",
                               None, False)
    assert (tuned["train-start-from"], tuned["ngf (G width)"]) == (("facades_tiny", True), (8, True))
    assert tuned["train-direction"] == ("BtoA", False)  # what a facades run trains with, whatever was sent

    cyclegan = load_while_running("unpaired", "red2blue", "AtoB", "Quick demo", 200, 0, 1, 100.0, 2e-4, 4,
                                  "from scratch", None, False)
    assert cyclegan["train-task"] == ("unpaired", True) and cyclegan["ngf (G width)"] == (4, True)
    assert not any(cyclegan[name][1] for name in ("train-direction", "train-lambda-l1", "train-diff-augment"))

    archive = tmp_path / "pairs.zip"
    with zipfile.ZipFile(archive, "w") as writer:
        for path in (tmp_path / "data" / "pairs" / "train").iterdir():
            writer.write(path, f"pairs/{path.name}")
    uploaded = load_while_running("aligned", "", "AtoB", "Quick demo", 50, 0, 1, 100.0, 2e-4, 8, "from scratch",
                                  str(archive), False)
    assert uploaded["train-data"] == ("", True)  # the server's unpacked folder is never shown
    assert "a zip uploaded for the run that is going" in uploaded["train-dataset"][0]

    assert _page_load(blocks) == idle  # the run ended: a new page keeps its defaults
    with pytest.raises(Pix2PixError, match="cancelled on purpose"):
        with job.preparing("checking the settings..."):
            assert _page_load(blocks) == idle  # a Start still checking has no settings to show yet
            raise Pix2PixError("cancelled on purpose")


def official_cyclegan_import(path: Path) -> Path:
    """A one-generator import of an official CycleGAN file (`import-official --model cyclegan`): ResNet-6 of width 4,
    its A -> B generator only."""
    import torch

    from pix2pix_core.config import cyclegan_config
    from pix2pix_core.networks import build_generator
    from pix2pix_core.official import import_official, official_key

    net = build_generator(cyclegan_config(netG="resnet_6blocks", ngf=4))
    pth = path.with_suffix(".pth")
    torch.save({official_key(k): v for k, v in net.state_dict().items()}, pth)
    return import_official(pth, path, netG="resnet_6blocks", ngf=4, model="cyclegan")


def test_an_unpaired_run_fine_tunes_a_cyclegan_model_of_the_app(facades_checkpoint, tmp_path):
    """"Start from" offered only "from scratch" for the Unpaired task and refused any model, though the command line
    fine-tunes a CycleGAN. It now offers the app's CycleGAN models (an official one-generator import too), refuses a
    pix2pix model for an unpaired run and a CycleGAN for a pix2pix run in one line, says which generator starts from
    where, trains at the model's architecture, and a page opened during the run shows the choice."""
    import re

    import gradio as gr

    from conftest import write_collection
    from demo.app import build_app
    from pix2pix_core.checkpoint import config_of, export_generator, read_header

    (tmp_path / "checkpoints").mkdir()
    export_generator(facades_checkpoint, tmp_path / "checkpoints" / "facades_tiny.safetensors")
    official_cyclegan_import(tmp_path / "checkpoints" / "red2blue.safetensors")
    write_collection(tmp_path / "data" / "red2blue" / "trainA", 3, (200, 40, 40), seed=1)
    write_collection(tmp_path / "data" / "red2blue" / "trainB", 2, (40, 40, 200), seed=2)
    blocks = build_app(tmp_path / "checkpoints", tmp_path / "data", tmp_path / "runs", device="cpu",
                       train_memory_bytes=10 ** 9)
    job, start = blocks.app_state.job, _handler(blocks, "train_start")
    on_task = next(fn.fn for fn in blocks.fns.values() if fn.fn is not None and fn.fn.__name__ == "on_task")
    assert [value for _, value in on_task("unpaired")[0].choices] == ["from scratch", "red2blue"]
    assert [value for _, value in on_task("facades")[0].choices] == ["from scratch", "facades_tiny"]

    def run(task, folder, model):
        return start(task, folder, "AtoB", "Quick demo", 1, 0, 1, 100.0, 2e-4, 16, model, None, False)

    for task, folder, model, refusal in (
            ("unpaired", "red2blue", "facades_tiny", "'facades_tiny': it is a model of the task 'Facades: labels → "
                                                     "photo'; a run of the task 'Unpaired (CycleGAN)' starts from a "
                                                     "model of that task or from scratch"),
            ("facades", "", "red2blue", "'red2blue': it is a model of the task 'Unpaired (CycleGAN)'; a run of the "
                                       "task 'Facades: labels → photo' starts from a model of that task or from "
                                       "scratch"),
            ("unpaired", "red2blue", "ghost", "cannot start from 'ghost': not a model of this app (the picker lists "
                                               "them; reload the page if it was removed")):
        with pytest.raises(gr.Error, match=re.escape(refusal)):
            run(task, folder, model)
    reply = run("unpaired", "red2blue", "red2blue")
    assert reply.startswith("Started unpaired-") and reply.endswith(
        " Fine-tuning: G (A -> B) from `red2blue`, F (B -> A) fresh, D_A and D_B fresh; at the model's size, 256 px, "
        "resnet_6blocks, ngf 4 (the preset's: 128 px, resnet_6blocks, ngf 16)."), reply  # not a quick 128 px run
    shown = _page_load(blocks)
    assert shown["train-start-from"] == ("red2blue", True) and shown["ngf (G width)"] == (4, True)
    restore = next(fn.fn for fn in blocks.fns.values() if fn.fn is not None and fn.fn.__name__ == "restore_form")
    assert ("red2blue", "red2blue") in restore()[10].choices  # the restored choice is one of the picker's
    ended = wait_until_idle(job, timeout=300)
    assert ended.phase == "finished", ended.message
    tuned = config_of(read_header(blocks.app_state.models_dir / f"{ended.model}.safetensors"))
    assert (tuned.model, tuned.netG, tuned.ngf, tuned.crop_size) == ("cyclegan", "resnet_6blocks", 4, 256)


def test_showing_the_train_tab_keeps_an_unpaired_runs_start_from_choices(facades_checkpoint, tmp_path):
    """Showing the Train tab again (after the Facades tab, say) redrew "Start from" with "from scratch" alone for the
    Unpaired task: the tab's own handler offered CycleGAN models, the app's tab-select handler still said "a CycleGAN
    run starts from scratch", and a CycleGAN picked there was dropped without a word."""
    from demo.app import build_app
    from pix2pix_core.checkpoint import export_generator

    (tmp_path / "checkpoints").mkdir()
    export_generator(facades_checkpoint, tmp_path / "checkpoints" / "facades_tiny.safetensors")
    official_cyclegan_import(tmp_path / "checkpoints" / "red2blue.safetensors")
    blocks = build_app(tmp_path / "checkpoints", tmp_path / "data", tmp_path / "runs", device="cpu")
    shown = [fn.fn for fn in blocks.fns.values() if any(event == "select" for _, event in fn.targets)
             and "train-start-from" in [getattr(c, "elem_id", None) for c in fn.outputs]]
    assert len(shown) == 1
    for task, current, choices in (("unpaired", "red2blue", ["from scratch", "red2blue"]),
                                   ("facades", "facades_tiny", ["from scratch", "facades_tiny"]),
                                   ("facades", "red2blue", ["from scratch", "facades_tiny"])):
        picker = shown[0](task, current)
        assert [value for _, value in picker.choices] == choices
        assert picker.value == (current if current in choices else "from scratch")


def test_the_status_counts_epochs_as_the_page_does(facades_dir, tmp_path):
    """/train_status counted epochs from 0 while the page said "epoch 1": at the end of a 2-epoch run a client read
    epoch 1, the page "epoch 2". Both count from 1 now (0 before the first step), and both give the run's epochs."""
    from demo.train_tab import progress_html

    job = TrainingJob(tmp_path / "runs", tmp_path / "runs" / "models", on_model=lambda path: None)
    assert job.snapshot().as_dict()["epoch"] == 0
    job.start(tiny_config(data=str(facades_dir), epochs=1, epochs_decay=1))  # 6 pairs at batch 2: 3 steps an epoch
    ended = wait_until_idle(job)
    assert ended.phase == "finished" and ended.step == 6
    assert ended.as_dict()["epoch"] == 2 and "step 6 / 6 · epoch 2" in progress_html(ended)
    assert ended.as_dict()["epochs"] == 2 and "epoch 2 / 2" in progress_html(ended)


def test_the_forms_input_side_is_the_one_each_task_trains_with():
    """The form picked "facades: BtoA, else AtoB" beside the core's TASK_DIRECTIONS. One rule now: the core's,
    except colorize, whose app runs have always stored AtoB (the direction is part of a dataset cache's key)."""
    from demo.train_settings import checked_numbers, form_direction, with_settings
    from demo.train_tab import TASKS, task_settings
    from pix2pix_core.config import TASK_DIRECTIONS, TrainConfig

    numbers = checked_numbers(1, 0, 1, 100, 2e-4, 8)
    stored = {task: with_settings(TrainConfig(task=task, **task_settings(task, "Quick demo")), numbers,
                                  form_direction(task), 10 ** 9).direction for _, task in TASKS}
    assert stored == {"facades": "BtoA", "colorize": "AtoB", "aligned": "AtoB", "paired": "AtoB", "unpaired": "AtoB"}
    assert {task: form_direction(task) for task in stored} == {**TASK_DIRECTIONS, "colorize": "AtoB"}
    # the direction an API client sends (the radio's default is facades' BtoA) changes nothing fixed
    for task in ("facades", "colorize"):
        config = TrainConfig(task=task, **task_settings(task, "Quick demo"))
        assert with_settings(config, numbers, "AtoB" if task == "facades" else "BtoA", 10 ** 9).direction == \
            stored[task]


def test_the_train_tab_shows_its_sample_as_one_file_per_sample(facades_dir, tmp_path, monkeypatch):
    """The sample went to the page as a PIL image at every redraw (each loss logged, for each page watching):
    encoded again each time, and Gradio rewrote its cache file in place while a browser could be fetching the
    same picture. Now one file per sample, the same path until a new sample comes."""
    from PIL import Image

    from demo.app import build_app

    blocks = build_app(tmp_path / "checkpoints", tmp_path / "data", tmp_path / "runs", device="cpu")
    state = blocks.app_state
    redraw = next(fn.fn for fn in blocks.fns.values() if fn.fn is not None and fn.fn.__name__ == "redraw")
    state.job.start(tiny_config(data=str(facades_dir), max_steps=2, sample_every=1))
    assert wait_until_idle(state.job).phase == "finished"
    encoded = []
    real_save = Image.Image.save
    monkeypatch.setattr(Image.Image, "save", lambda image, *args, **kwargs: (encoded.append(image.size),
                                                                            real_save(image, *args, **kwargs))[1])
    first, again = redraw()[4], redraw()[4]
    assert isinstance(first, str) and Path(first).name == "sample.png" and again == first
    assert Image.open(first).size == state.job.snapshot().sample.size
    assert len(encoded) == 1


def test_a_run_without_a_sample_clears_the_last_runs(facades_dir, tmp_path):
    """A run that failed before its first sample showed the previous run's sample beside its own "failed"
    status and empty plots, as if it had drawn it."""
    from PIL import Image

    from demo.app import build_app

    blocks = build_app(tmp_path / "checkpoints", tmp_path / "data", tmp_path / "runs", device="cpu")
    state = blocks.app_state
    redraw = next(fn.fn for fn in blocks.fns.values() if fn.fn is not None and fn.fn.__name__ == "redraw")
    state.job.start(tiny_config(data=str(facades_dir), max_steps=2, sample_every=1))
    assert wait_until_idle(state.job).phase == "finished" and isinstance(redraw()[4], str)
    odd = tmp_path / "odd" / "train"  # images, none an A|B pair: the run starts, then fails while loading
    odd.mkdir(parents=True)
    for i in range(3):
        Image.new("RGB", (63, 32), (i, 0, 0)).save(odd / f"{i}.jpg")
    state.job.start(tiny_config(data=str(odd.parent), max_steps=2, sample_every=1))
    assert wait_until_idle(state.job).phase == "failed"
    assert redraw()[4] is None


def test_an_unpaired_dataset_with_an_empty_collection_says_which(tmp_path):
    """The app answered "the dataset holds no training images" for a trainA/ of pictures beside an empty trainB/."""
    from conftest import write_collection
    from demo.train_settings import check_run_size
    from pix2pix_core.config import cyclegan_config

    write_collection(tmp_path / "trainA", 3, (200, 60, 40), seed=1)
    (tmp_path / "trainB").mkdir()
    config = cyclegan_config(data=str(tmp_path), netG="resnet_6blocks", ngf=8, ndf=8, crop_size=32, load_size=36)
    with pytest.raises(Pix2PixError, match=r"no training images: trainB/ holds none \(an unpaired run"):
        check_run_size(config)


@pytest.mark.parametrize("task, hint", [("facades", " (it holds A/ and B/: paired data, for the paired task)"),
                                        ("paired", "")])
def test_paired_data_given_to_a_task_that_reads_images_names_the_paired_task(tmp_path, task, hint):
    """The app said only "the dataset holds no training images" to a facades run on train/A/ and train/B/; the
    hint names the paired task, and not to a paired run whose A/ and B/ share no file name."""
    from conftest import write_collection
    from demo.train_settings import check_run_size

    write_collection(tmp_path / "train" / "A", 1, (200, 60, 40), seed=1)
    write_collection(tmp_path / "train" / "B", 1, (40, 60, 200), seed=2)
    (tmp_path / "train" / "B" / "0.png").rename(tmp_path / "train" / "B" / "other.png")  # no pair for the paired run
    with pytest.raises(Pix2PixError) as refused:
        check_run_size(tiny_config(task=task, data=str(tmp_path)))
    assert str(refused.value) == f"the dataset holds no training images{hint}"


def test_no_result_is_written_while_the_disk_is_nearly_full():
    """Results had no disk bound (uploads did): one client repeating /colorize on one uploaded photo wrote about
    12 MB/s into the outputs and Gradio's cache. Below the margin a new result is refused in one line; a result
    already written is still handed out (it takes no space)."""
    from PIL import Image

    from demo.image_work import OutputFiles
    from pix2pix_core.errors import Pix2PixError

    free = {"bytes": 10 * 2 ** 30}
    outputs = OutputFiles(min_free_bytes=2 * 2 ** 30, free_bytes=lambda folder: free["bytes"])
    picture = Image.new("RGB", (8, 8), "red")
    kept = outputs.save_by_content(picture, "photo")
    free["bytes"] = 2 ** 30
    for save in (outputs.save, outputs.save_by_content):
        with pytest.raises(Pix2PixError, match="disk is nearly full"):
            save(Image.new("RGB", (8, 8), "blue"), "photo")
    assert outputs.save_by_content(picture, "photo") == kept
    assert len([p for p in outputs.folder.rglob("*") if p.is_file()]) == 1


def test_the_translate_section_rescans_the_models_only_for_a_name_it_does_not_know(facades_checkpoint, tmp_path):
    """Every /translate request rescanned every model's header (0.14 ms each, outside the lanes): a name the
    registry knows is used as it is; an unknown one (a model trained or added since) rescans once."""
    import gradio as gr
    from PIL import Image

    from demo.app import build_app
    from pix2pix_core.checkpoint import export_generator

    (tmp_path / "checkpoints").mkdir()
    export_generator(facades_checkpoint, tmp_path / "checkpoints" / "facades_tiny.safetensors")
    blocks = build_app(tmp_path / "checkpoints", tmp_path / "data", tmp_path / "runs", device="cpu")
    translate = _handler(blocks, "translate")
    picture = tmp_path / "p.png"
    Image.new("RGB", (16, 16)).save(picture)
    rescans = []
    real_refresh = blocks.app_state.models.refresh
    blocks.app_state.models.refresh = lambda: rescans.append(1) or real_refresh()
    with pytest.raises(gr.Error, match="is a model of the task 'Facades: labels → photo': use it in its own tab"):
        translate(str(picture), "facades_tiny", "AtoB")
    assert rescans == []
    with pytest.raises(gr.Error, match="unknown model 'later'"):
        translate(str(picture), "later", "AtoB")
    assert rescans == [1]


def _built_with(tmp_path, **checkpoints):
    """A built app whose models are `checkpoints`' generators (name -> checkpoint), and a picture to send it."""
    from PIL import Image

    from demo.app import build_app
    from pix2pix_core.checkpoint import export_generator

    (tmp_path / "checkpoints").mkdir()
    for name, checkpoint in checkpoints.items():
        export_generator(checkpoint, tmp_path / "checkpoints" / f"{name}.safetensors")
    Image.new("RGB", (16, 16)).save(tmp_path / "p.png")
    return build_app(tmp_path / "checkpoints", tmp_path / "data", tmp_path / "runs", device="cpu")


def _said(call, api_client: bool = False) -> str:
    """The one line `call`'s refusal shows: on the page, or to an API client (/train_start takes the command line's
    task names)."""
    import gradio as gr

    from demo.messages import PLAIN_TEXT_READER
    from demo.ui import as_text

    token = PLAIN_TEXT_READER.set(api_client)
    try:
        call()
    except gr.Error as exc:  # a handler's: shown as it says
        return exc.message
    except Pix2PixError as exc:
        return as_text(exc)
    finally:
        PLAIN_TEXT_READER.reset(token)
    pytest.fail("not refused")


def test_the_apps_own_messages_name_the_tasks_as_the_page_does(facades_checkpoint, colorize_checkpoint, tmp_path):
    """The app's own refusals named tasks as the command line does, in words the page never shows ("it is a pix2pix
    aligned model; a paired run starts from...", "its task: aligned"): they say "the aligned task" now, which the
    page's cleaner names by the Train form's labels, as it does the library's; an API client keeps the command
    line's names (/train_start takes them), also where the page's label was said to everyone."""
    from demo.dataset_line import default_data

    blocks = _built_with(tmp_path, facades=facades_checkpoint, colorize=colorize_checkpoint)
    state, translate = blocks.app_state, _handler(blocks, "translate")
    facades, colorize, aligned = "'Facades: labels → photo'", "'Colorize: gray → colour'", "'Custom: A|B images'"
    for call, page, api in [
            (lambda: state.models.start_point("colorize", "facades"),
             f"cannot start from 'colorize': it is a model of the task {colorize}; a run of the task {facades} "
             "starts from a model of that task or from scratch",
             "cannot start from 'colorize': it is a model of the colorize task; a run of the facades task starts "
             "from a model of that task or from scratch"),
            (lambda: state.models.translator("colorize", "facades"),
             f"model 'colorize' is a model of the task {colorize}, not of the task {facades}",
             "model 'colorize' is a model of the colorize task, not of the facades task"),
            (lambda: state.models.translator(None, "aligned"),
             f"no model of the task {aligned} found; put one in the checkpoints folder or train one",
             "no model of the aligned task found; put one in the checkpoints folder or train one"),
            (lambda: translate(str(tmp_path / "p.png"), "facades", "AtoB"),
             f"model 'facades' is a model of the task {facades}: use it in its own tab",
             "model 'facades' is a model of the facades task: use it in its own tab"),
            (lambda: default_data(state, "aligned"),
             f"give a dataset folder (inside the data root) or upload a zip for the task {aligned}",
             "give a dataset folder (inside the data root) or upload a zip for the aligned task")]:
        assert _said(call) == page
        assert _said(call, api_client=True) == api


def test_a_model_name_typed_as_a_path_is_echoed_as_typed(facades_checkpoint, tmp_path):
    """A model name sent through the API is a name, never opened as a path: its refusal quoted it as a server path,
    so '/srv/my models/x' came back as 'x', naming something else than what was sent."""
    blocks = _built_with(tmp_path, facades=facades_checkpoint)
    state, translate = blocks.app_state, _handler(blocks, "translate")
    for typed in ("/etc/passwd", "/srv/my models/the paired task"):
        for call, line in [(lambda: state.models.translator(typed, "facades"), f"unknown model '{typed}'; available"),
                           (lambda: state.models.start_point(typed, "facades"), f"cannot start from '{typed}': not"),
                           (lambda: translate(str(tmp_path / "p.png"), typed, "AtoB"), f"unknown model '{typed}'")]:
            for api_client in (False, True):
                assert _said(call, api_client).startswith(line)


def test_the_facades_help_explains_start_from_a_photo_when_it_is_offered(facades_checkpoint, tmp_path):
    """The Facades tab's help did not say what 'Start from a photo' (shown when the segmenter is installed) does:
    it says what the button does when the button is there, and nothing of it when it is not."""
    import shutil

    from demo.app import build_app
    from pix2pix_core.checkpoint import export_generator

    def help_and_button(checkpoints: Path) -> tuple[str, bool]:
        blocks = build_app(checkpoints, tmp_path / "data", tmp_path / "runs", device="cpu")
        by_id = {getattr(block, "elem_id", None): block for block in blocks.blocks.values()}
        button = [block for block in blocks.blocks.values() if getattr(block, "label", None) == "Start from a photo"]
        return by_id["facade-help"].value, button[0].visible

    checkpoints = tmp_path / "checkpoints"
    checkpoints.mkdir()
    export_generator(facades_checkpoint, checkpoints / "facades_tiny.safetensors")
    text, shown = help_and_button(checkpoints)
    assert not shown and "Start from a photo" not in text
    shutil.copy(Path(__file__).resolve().parents[1] / "checkpoints" / "facades_segmenter.safetensors", checkpoints)
    text, shown = help_and_button(checkpoints)
    assert shown and "**Start from a photo** turns a photo" in text


def test_the_loss_history_of_a_long_run_is_bounded(tmp_path):
    """Every step's losses were kept for the plots, 420 bytes a step, and every open page's timer copied all of them
    and made a table of them every second: at 400,000 steps (runs may have 2,000,000) 167 MB, and 0.6 s of CPU per
    page per second. At most 2,000 steps are kept (state.MAX_HISTORY_STEPS), spread over the whole run."""
    from pix2pix_core.train import LOSS_NAMES, LossEvent

    job = TrainingJob(tmp_path / "runs", tmp_path / "runs" / "models", on_model=lambda path: None)
    steps = 20_000
    for step in range(1, steps + 1):
        job._on_event(LossEvent(step=step, epoch=0, losses={name: 0.5 for name in LOSS_NAMES}, images_per_second=1.0,
                                progress=step / steps, eta_seconds=0.0, lr=2e-4))
    history = job.snapshot().history
    kept = sorted({step for step, _, _ in history})
    assert 1000 <= len(kept) <= 2000 and len(history) == len(kept) * len(LOSS_NAMES)
    assert kept[0] < steps // 100 and kept[-1] > steps - steps // 100  # the whole run, not its start or end


def test_the_thinned_loss_history_ends_at_the_latest_step(tmp_path):
    """The bounded history kept only every 2^n-th step, so the plots ended up to 2^n - 1 steps behind the run
    (255 at 400,000 steps) and never showed a run's last step when it was not on that grid (20,003 ended at
    20,000). The latest step is always the last in the history now, within MAX_HISTORY_STEPS."""
    from demo.state import MAX_HISTORY_STEPS
    from demo.train_tab import plot_frames
    from pix2pix_core.train import LOSS_NAMES, LossEvent

    job = TrainingJob(tmp_path / "runs", tmp_path / "runs" / "models", on_model=lambda path: None)
    steps = 20_003
    for step in range(1, steps + 1):
        job._on_event(LossEvent(step=step, epoch=0, losses={name: float(step) for name in LOSS_NAMES},
                                images_per_second=1.0, progress=step / steps, eta_seconds=0.0, lr=2e-4))
        if step in (2_001, 5_555, 12_345):
            assert job.snapshot().history[-1][0] == step
    history = job.snapshot().history
    kept = sorted({step for step, _, _ in history})
    assert kept[-1] == steps and len(kept) <= MAX_HISTORY_STEPS and len(history) == len(kept) * len(LOSS_NAMES)
    gan, l1 = plot_frames(job.snapshot())
    assert gan["step"].max() == steps and l1["step"].max() == steps
    assert kept[:-1] == [step for step in kept[:-1] if step % job._history_every == 0]  # spread evenly before it


def _interactive(update) -> bool:
    """Whether a button update (a gr.update dict, or a component) leaves the button clickable."""
    return update.get("interactive", True) if isinstance(update, dict) else update.interactive is not False


def test_stop_can_be_pressed_only_while_a_run_goes_and_start_only_while_none_does(facades_dir, tmp_path):
    """Stop was clickable with no run going (it only answered "No training run is going."), Start while a run went
    (refused), and before any run the progress line read "0% · step 0". The redraw and the timer's tick set both
    buttons from the job; an idle page says there is no run yet, an ended one shows where its run ended."""
    from demo.app import build_app
    from demo.train_tab import progress_html

    blocks = build_app(tmp_path / "checkpoints", tmp_path / "data", tmp_path / "runs", device="cpu")
    state = blocks.app_state
    fns = {fn.fn.__name__: fn for fn in blocks.fns.values() if fn.fn is not None}
    for name in ("redraw", "tick"):  # both write the buttons
        assert {"train-start", "train-stop"} <= {getattr(c, "elem_id", None) for c in fns[name].outputs}, name
    ids = [getattr(c, "elem_id", None) for c in fns["tick"].outputs]
    stop = next(block for block in blocks.blocks.values() if getattr(block, "elem_id", None) == "train-stop")
    assert stop.interactive is False  # as the page is first built: no run going

    def shown(outputs, names):
        return {name: outputs[names.index(name)] for name in ("train-start", "train-stop", "train-progress")}

    redraw_ids = [getattr(c, "elem_id", None) for c in fns["redraw"].outputs]
    idle = shown(fns["redraw"].fn(), redraw_ids)
    assert _interactive(idle["train-start"]) and not _interactive(idle["train-stop"])
    assert "No run yet" in idle["train-progress"] and "step 0" not in idle["train-progress"]
    with state.job.preparing("checking the settings..."):  # a Start checking its settings: Stop cancels it
        going = shown(fns["tick"].fn(-1, ""), ids)
        assert not _interactive(going["train-start"]) and _interactive(going["train-stop"])
        assert "step 0" not in going["train-progress"]
        state.job.stop()
        stopping = shown(fns["tick"].fn(-1, ""), ids)  # asked once: nothing more to ask
        assert not _interactive(stopping["train-start"]) and not _interactive(stopping["train-stop"])
    state.job.start(tiny_config(data=str(facades_dir), max_steps=2))
    assert wait_until_idle(state.job).phase == "finished"
    ended = shown(fns["tick"].fn(-1, ""), ids)
    assert _interactive(ended["train-start"]) and not _interactive(ended["train-stop"])
    assert "100% · step 2 / 2" in ended["train-progress"] == progress_html(state.job.snapshot())


def test_a_quick_demo_start_decays_the_lr_with_diffaugment_on_d(tmp_path, monkeypatch):
    """The Quick demo trained 20 epochs at a constant LR with a bare D: its last weights were never annealed and its
    small D learned 100 images by heart. Measured at the same 2,000 steps (docs/quick_demo.md), 10 + 10 epochs
    (LR decayed over the second half) with DiffAugment on D gave facades KID x1000 of 74-85 against 109-129.
    A Start with the form's own defaults trains that for pix2pix tasks, DiffAugment box unticked; a CycleGAN run
    (which has no DiffAugment) only the schedule; choosing the preset fills the form with the same schedule."""
    from conftest import write_collection, write_colour_photos
    from demo.app import build_app
    from demo.train_tab import on_preset

    (tmp_path / "checkpoints").mkdir()
    write_aligned(tmp_path / "data" / "facades" / "train", 3, seed=3)
    write_colour_photos(tmp_path / "data" / "food" / "train", 3, seed=3)
    write_collection(tmp_path / "data" / "red2blue" / "trainA", 3, (200, 40, 40), seed=1)
    write_collection(tmp_path / "data" / "red2blue" / "trainB", 2, (40, 40, 200), seed=2)
    blocks = build_app(tmp_path / "checkpoints", tmp_path / "data", tmp_path / "runs", device="cpu",
                       train_memory_bytes=10 ** 9)
    started = []
    monkeypatch.setattr(blocks.app_state.job, "start", lambda config, **_: started.append(config) or "Started")
    event = next(fn for fn in blocks.fns.values() if fn.api_name == "train_start")
    form = [component.value for component in event.inputs]  # what the page (and an API client) sends by default
    assert form[3] == "Quick demo" and form[-1] is False  # the preset; the DiffAugment box
    for task, folder, augments in (("facades", "", "translation,cutout"), ("colorize", "", "translation,cutout"),
                                   ("unpaired", "red2blue", "")):
        assert event.fn(task, folder, *form[2:]).startswith("Started"), task
        config = started[-1]
        assert (config.task, config.epochs, config.epochs_decay, config.diff_augment) == (task, 10, 10, augments)
        assert (config.netG, config.crop_size, config.max_images, config.lr) == (
            "unet_128" if task != "unpaired" else "resnet_6blocks", 128, 100, 2e-4)
    assert event.fn("facades", "", *form[2:-1], True).startswith("Started")  # the box ticked: the same, once
    assert started[-1].diff_augment == "translation,cutout"
    assert on_preset("Quick demo") == (10, 10, 1, 16)


@pytest.mark.parametrize("augments, advice", [("", "start again with DiffAugment ticked"),
                                              ("translation,cutout", "it had DiffAugment on already")])
def test_a_collapsed_run_is_advised_what_it_did_not_have(facades_dir, tmp_path, monkeypatch, augments, advice):
    """A collapsed run was told to start again with DiffAugment ticked, also a Quick demo run, which has it on
    (and whose Start, at seed 0, would repeat the same run)."""
    from pix2pix_core.train import FinishedEvent, Trainer

    collapsed = FinishedEvent(step=7, epoch=0, reason="collapsed", checkpoint=None)
    monkeypatch.setattr(Trainer, "run", lambda self: collapsed)
    job = TrainingJob(tmp_path / "runs", tmp_path / "runs" / "models", on_model=lambda path: None)
    job.start(tiny_config(data=str(facades_dir), max_steps=1, diff_augment=augments))
    ended = wait_until_idle(job)
    assert ended.phase == "failed" and "the GAN collapsed" in ended.message and advice in ended.message
