"""The app's training job driven directly (no server): how a Start, a Stop and the end of a run interleave."""

from __future__ import annotations

import time

import pytest

from conftest import tiny_config
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
    from demo.train_tab import get_data_command

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
