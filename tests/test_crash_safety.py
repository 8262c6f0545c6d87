"""Training must never lose a run: SIGKILL, a kill during a checkpoint write, a full disk, NaN losses.

The kills are real (a `python -m pix2pix_core train` subprocess and SIGKILL), the rest runs in process
on tiny models (`tiny_config`: unet_128, ngf 8) so the file stays well under a minute.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from collections import namedtuple
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from pix2pix_core import checkpoint as checkpoint_module
from pix2pix_core import run_folder
from pix2pix_core.checkpoint import load_generator, read_checkpoint
from pix2pix_core.cli import main
from pix2pix_core.errors import CheckpointError, Pix2PixError
from pix2pix_core.train import LossEvent, Trainer, resume_config

from conftest import tiny_config, train_args

REPO = Path(__file__).resolve().parents[1]


def state_of(path: Path) -> dict:
    """The training position stored in a checkpoint's header (cheap: tensors are not read)."""
    with safe_open(str(path), framework="pt") as handle:
        return json.loads(handle.metadata()["state"])


def temp_litter(run: Path) -> list[Path]:
    return sorted((run / "checkpoints").glob(".*.tmp"))


def run_cli(args: list[str], timeout: float = 120, **popen) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "pix2pix_core", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def csv_steps(run: Path) -> list[int]:
    lines = (run / "losses.csv").read_text().splitlines()[1:]
    return [int(line.split(",")[0]) for line in lines if line]


# ------------------------------------------------------------------------------------ SIGKILL
def test_sigkill_mid_epoch_then_resume(facades_dir, tmp_path) -> None:
    """Kill -9 a real training process mid-epoch; `--resume` finishes from the last complete checkpoint."""
    run = tmp_path / "run"
    latest = run / "checkpoints" / "latest.safetensors"
    process = run_cli(train_args(facades_dir, run, "--max-steps", "24"))
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and process.poll() is None:
            try:
                state = state_of(latest)
            except Exception:  # not written yet
                state = {"step": 0, "batch": 0}
            if state["step"] >= 4 and state["batch"] > 0:  # into the second epoch, mid-epoch
                break
            time.sleep(0.02)
        assert process.poll() is None, f"finished before it could be killed: {process.communicate()}"
        os.kill(process.pid, signal.SIGKILL)
        assert process.wait(timeout=30) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()

    killed_at = state_of(latest)
    assert 4 <= killed_at["step"] < 24
    load_generator(latest)  # the checkpoint a kill left behind is complete

    resumed = run_cli(train_args(facades_dir, run, "--max-steps", "24", "--resume"))
    out, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    assert "max_steps at step 24" in out
    assert state_of(latest)["step"] == 24
    generator, config, _ = load_generator(latest)
    assert config.ngf == 8 and all(torch.isfinite(p).all() for p in generator.parameters())
    assert csv_steps(run) == list(range(1, 25))  # no step lost or logged twice across the kill
    assert not temp_litter(run)


# ------------------------------------------------------------------------------------ interrupted writes
KILL_DURING_THIRD_SAVE = textwrap.dedent("""
    import os, signal, sys
    import pix2pix_core.checkpoint as checkpoint

    real_save, saves = checkpoint.save_file, []

    def dying_save(tensors, filename, metadata=None):
        saves.append(filename)
        real_save(tensors, filename, metadata=metadata)
        if len(saves) == 3:  # the process dies with the third checkpoint half written
            data = open(filename, "rb").read()
            open(filename, "wb").write(data[: len(data) // 2])
            os.kill(os.getpid(), signal.SIGKILL)

    checkpoint.save_file = dying_save
    from pix2pix_core.cli import main
    sys.exit(main(sys.argv[1:]))
""")


def test_kill_during_checkpoint_write(facades_dir, tmp_path) -> None:
    """SIGKILL inside the third save: `latest` is still the complete second one, the half-written temp
    file is the only trace, and resuming ignores and removes it."""
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    process = subprocess.run([sys.executable, "-c", KILL_DURING_THIRD_SAVE, *train_args(facades_dir, run)],
                             cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert process.returncode == -signal.SIGKILL, process.stderr
    latest = run / "checkpoints" / "latest.safetensors"
    assert state_of(latest)["step"] == 2
    load_generator(latest)
    litter = temp_litter(run)
    assert len(litter) == 1
    with pytest.raises(CheckpointError, match="truncated"):
        read_checkpoint(litter[0])  # what would have been step 3 really is broken

    result = Trainer(resume_config(run, {"max_steps": 5}), resume=True).run()
    assert (result.reason, result.step) == ("max_steps", 5)
    assert not temp_litter(run)
    assert csv_steps(run) == [1, 2, 3, 4, 5]


def test_disk_full_during_checkpoint_write(facades_dir, tmp_path, monkeypatch) -> None:
    """ENOSPC halfway through a save: a clear error, the previous checkpoint intact, no temp file."""
    run = tmp_path / "run"
    real_save, saves = checkpoint_module.save_file, []

    def filling_save(tensors, filename, metadata=None):
        saves.append(filename)
        if len(saves) == 3:
            Path(filename).write_bytes(b"\x00" * 1000)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_save(tensors, filename, metadata=metadata)

    monkeypatch.setattr(checkpoint_module, "save_file", filling_save)
    config = tiny_config(data=str(facades_dir), out=str(run), checkpoint_every_steps=1, max_steps=6)
    with pytest.raises(CheckpointError, match="No space left on device.*previous checkpoint.*intact"):
        Trainer(config).run()
    assert state_of(run / "checkpoints" / "latest.safetensors")["step"] == 2
    assert not temp_litter(run)


def test_checkpoints_are_ordinary_readable_files(facades_checkpoint) -> None:
    """The temp file's 0600 mode must not stick to the checkpoint (another user or the app must read it)."""
    umask = os.umask(0o022)
    os.umask(umask)
    assert Path(facades_checkpoint).stat().st_mode & 0o777 == 0o666 & ~umask


# ------------------------------------------------------------------------------------ NaN and inf
def test_nan_loss_stops_with_a_clear_message(facades_dir, tmp_path, monkeypatch, capsys) -> None:
    """The L1 loss turns NaN at step 4 (through the CLI): exit 1, one clear line, checkpoint of step 3 kept."""
    real_l1, calls = torch.nn.functional.l1_loss, []

    def l1_going_nan(output, target, *args, **kwargs):
        calls.append(1)
        loss = real_l1(output, target, *args, **kwargs)
        return loss * float("nan") if len(calls) >= 4 else loss

    monkeypatch.setattr(torch.nn.functional, "l1_loss", l1_going_nan)
    threads = torch.get_num_threads()
    run = tmp_path / "run"
    try:
        code = main(train_args(facades_dir, run, "--max-steps", "8"))
    finally:
        torch.set_num_threads(threads)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert err[-1].startswith("error: training diverged at step 4 (G_L1=nan)"), err
    assert "last good checkpoint" in err[-1] and "lower learning rate" in err[-1]
    latest = run / "checkpoints" / "latest.safetensors"
    assert state_of(latest)["step"] == 3
    generator, _, _ = load_generator(latest)
    assert all(torch.isfinite(p).all() for p in generator.parameters())
    assert csv_steps(run) == [1, 2, 3]


def test_non_finite_weights_never_replace_a_good_checkpoint(facades_dir, tmp_path) -> None:
    """Weights can go inf in an update whose loss was still finite (the loss is computed before it);
    the checkpoint due right after that step must be refused, not written over the good one."""
    run = tmp_path / "run"
    config = tiny_config(data=str(facades_dir), out=str(run), checkpoint_every_steps=1, max_steps=6)
    trainer = Trainer(config)

    def poison(event) -> None:
        if isinstance(event, LossEvent) and event.step == 3:
            with torch.no_grad():
                next(trainer.generator.parameters()).fill_(float("inf"))

    trainer.callbacks.append(poison)
    result = trainer.run()
    assert (result.reason, result.step) == ("diverged", 3)
    assert "non-finite weights" in result.message and "last good checkpoint" in result.message
    tensors = load_file(str(run / "checkpoints" / "latest.safetensors"))
    assert state_of(run / "checkpoints" / "latest.safetensors")["step"] == 2
    assert all(torch.isfinite(t).all() for k, t in tensors.items() if k.startswith(("G.", "D.")))


def test_stop_with_non_finite_weights_saves_nothing(facades_dir, tmp_path) -> None:
    """stop() normally saves; not when the weights went bad since the last log."""
    config = tiny_config(data=str(facades_dir), out=str(tmp_path / "run"), log_every=100)
    trainer = Trainer(config)
    steps = []
    original_step = trainer.train_step

    def step_then_poison(*args, **kwargs):
        losses = original_step(*args, **kwargs)
        steps.append(1)
        if len(steps) == 2:
            with torch.no_grad():
                next(trainer.generator.parameters()).fill_(float("nan"))
            trainer.stop()
        return losses

    trainer.train_step = step_then_poison
    result = trainer.run()
    assert result.reason == "diverged" and result.checkpoint is None
    assert not (tmp_path / "run" / "checkpoints" / "latest.safetensors").exists()


# ------------------------------------------------------------------------------------ before training
def test_unwritable_run_folder_is_an_error_before_training(facades_dir, tmp_path, capsys) -> None:
    """Tests run as root, so chmod cannot make a folder read-only here: a run folder below a regular
    file is just as unwritable, for every user."""
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    threads = torch.get_num_threads()
    try:
        code = main(train_args(facades_dir, blocker / "run"))
    finally:
        torch.set_num_threads(threads)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith("error: cannot write to the run folder") and "a_file/run" in err[0]
    assert "a_file is a file, not a folder" in err[0]  # it said "Not a directory" ("File exists" for a_file itself)
    assert main(train_args(facades_dir, blocker)) == 2
    assert capsys.readouterr().err.strip().endswith("a_file is a file, not a folder: give a folder")
    assert blocker.read_text() == "not a folder"


def test_a_run_folder_below_another_users_folder_is_a_pix2pix_error(tmp_path, monkeypatch) -> None:
    """RunFolder.check looked at the path (missing_folders, output_problem: exists(), is_dir()) before its write
    probe, and those raise EACCES below a folder this user may not read: a PermissionError, where the probe
    said "cannot write to the run folder ...: Permission denied"."""
    locked = tmp_path / "someone_else"
    locked.mkdir()
    lock_like_another_users_folder(monkeypatch, locked)
    with pytest.raises(Pix2PixError, match=r"cannot write to the run folder .*run: Permission denied"):
        run_folder.RunFolder(locked / "run").check(1000)


def test_training_below_another_users_folder_is_one_error_line(facades_dir, tmp_path, monkeypatch) -> None:
    """Trainer.run looked for an earlier run's checkpoint first, and exists() raised EACCES there: `train` ended in
    a PermissionError traceback."""
    locked = tmp_path / "someone_else"
    locked.mkdir()
    lock_like_another_users_folder(monkeypatch, locked)
    with pytest.raises(Pix2PixError, match=r"cannot read the run folder .*run: Permission denied"):
        Trainer(tiny_config(data=str(facades_dir), out=str(locked / "run"))).run()


def test_read_only_file_system_is_an_error_before_training(facades_dir, tmp_path, monkeypatch) -> None:
    """EROFS from the write probe (a read-only mount): refused before the first step."""
    real_write = Path.write_bytes

    def read_only(self, data):
        if self.name == ".write_test":
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))
        return real_write(self, data)

    monkeypatch.setattr(Path, "write_bytes", read_only)
    events = []
    config = tiny_config(data=str(facades_dir), out=str(tmp_path / "run"))
    with pytest.raises(Pix2PixError, match="cannot write to the run folder .*: Read-only file system"):
        Trainer(config, callbacks=[events.append]).run()
    assert events == []


def test_full_disk_is_an_error_before_training(facades_dir, tmp_path, monkeypatch) -> None:
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(run_folder.shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 10**6, 10**6))
    events = []
    config = tiny_config(data=str(facades_dir), out=str(tmp_path / "run"))
    with pytest.raises(Pix2PixError, match=r"not enough disk space in .*: 1 MB free, about \d+ MB needed"):
        Trainer(config, callbacks=[events.append]).run()
    assert events == []
    assert not (tmp_path / "run" / "checkpoints").exists()


CYCLEGAN_SETTINGS = {"model": "cyclegan", "task": "unpaired", "netG": "resnet_6blocks", "norm": "instance",
                     "gan_mode": "lsgan", "dropout": False, "conditional_D": False, "pool_size": 4}


@pytest.mark.parametrize("settings", [{}, {"ema_decay": 0.999}, {"use_gan": False}, CYCLEGAN_SETTINGS,
                                      {**CYCLEGAN_SETTINGS, "precision": "bf16"}],
                         ids=["default", "ema", "no-gan", "cyclegan", "cyclegan-bf16"])
def test_the_disk_check_counts_what_a_checkpoint_holds(settings, facades_dir, tmp_path, monkeypatch) -> None:
    """The room checked for (and the app's estimate) is the size latest.safetensors takes: it counted parameters
    x 12 bytes, without the averaged G (--ema-decay: 904 MB at ngf 64, not 686), CycleGAN's history pools, nor
    the D moments --no-gan never makes; as much as 1.5% above, never below."""
    from conftest import write_colour_photos
    from pix2pix_core.resources import estimate_training_memory

    data = facades_dir
    if settings.get("model") == "cyclegan":
        data = tmp_path / "unpaired"
        for side in "AB":
            write_colour_photos(data / f"train{side}", 4, seed=5)
    config = tiny_config(data=str(data), out=str(tmp_path / "run"), max_steps=2, **settings)  # pools full
    checked = []
    real_check = run_folder.RunFolder.check
    monkeypatch.setattr(run_folder.RunFolder, "check",
                        lambda self, size, kept=0: checked.append(size) or real_check(self, size, kept))
    Trainer(config).run()
    written = (tmp_path / "run" / "checkpoints" / "latest.safetensors").stat().st_size
    assert written <= checked[0] <= written * 1.015
    assert estimate_training_memory(config, 4).checkpoint == checked[0]


def test_epoch_checkpoints_that_will_not_fit_are_warned_about(facades_dir, tmp_path, monkeypatch) -> None:
    """Only room for two checkpoints was checked: the default --save-every 10 over 200 epochs keeps 20 of them
    (686 MB each at ngf 64). The run still starts (it may be cut short, or old ones deleted), with a warning."""
    from pix2pix_core.pix2pix_model import Pix2Pix

    size = Pix2Pix(tiny_config()).checkpoint_bytes()
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(run_folder.shutil, "disk_usage", lambda path: usage(10**12, 0, 6 * size + 60_000_000))
    config = tiny_config(data=str(facades_dir), out=str(tmp_path / "run"), max_steps=1, epochs=10, epochs_decay=10,
                         save_every=1)
    with pytest.warns(UserWarning, match=r"the 20 epoch checkpoints this run will keep \(--save-every\), with the "
                                         r"latest, need about"):
        Trainer(config).run()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Trainer(dataclasses.replace(config, out=str(tmp_path / "run2"), save_every=5)).run()  # 4 fit
    checkpoints = tmp_path / "run" / "checkpoints"  # a resumed run has written 17 of its 20 already
    for epoch in range(17):
        (checkpoints / f"epoch_{epoch + 1:04d}.safetensors").write_bytes(b"")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run_folder.RunFolder(tmp_path / "run").check(size, kept=20)  # 3 ahead + 2 fit in 6


def test_a_run_that_fails_before_its_first_checkpoint_removes_the_folder_it_created(tmp_path, capsys) -> None:
    """`train` on an empty train/ left an empty --out folder behind (made by the write probe before the data
    loaded), and an error in the first step a config.json and a losses.csv of no use: the folders the run
    created go again, parents included, but never one that was there before."""
    empty = tmp_path / "empty"
    (empty / "train").mkdir(parents=True)
    out = tmp_path / "runs" / "first"
    assert main(train_args(empty, out, "--max-steps", "2")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "no images" in err[0], err
    assert not (tmp_path / "runs").exists()
    made = tmp_path / "made_by_the_user"
    made.mkdir()
    assert main(train_args(empty, made, "--max-steps", "2")) == 2
    assert made.is_dir() and not any(made.iterdir())  # it was there before: kept, as it was


def test_a_failed_run_keeps_a_folder_that_existed_before_however_its_path_is_spelled(tmp_path, capsys) -> None:
    """`--out new/../mine` names the folder mine/ that was there before, through a folder new/ that was not:
    each of the path's spellings did not exist, so the failed run took the user's mine/ for its own and removed
    it (and left new/, which it had made)."""
    empty = tmp_path / "empty"
    (empty / "train").mkdir(parents=True)
    mine = tmp_path / "mine"
    mine.mkdir()
    assert main(train_args(empty, tmp_path / "new" / ".." / "mine", "--max-steps", "2")) == 2
    assert "no images" in capsys.readouterr().err
    assert mine.is_dir() and not any(mine.iterdir())


def test_an_error_before_the_first_logged_step_leaves_nothing(facades_dir, tmp_path) -> None:
    """An exception (or the second Ctrl-C) in the first step removes the run folder it created with its
    config.json and losses.csv header; after a logged step or a sample, or after a checkpoint, the run folder
    is kept whatever happens (its losses show how the run went wrong)."""
    def failing_trainer(run: Path, fail_at: int, failure: BaseException, **settings) -> Trainer:
        trainer = Trainer(tiny_config(data=str(facades_dir), out=str(run), max_steps=5, **settings))
        original_step, steps = trainer.train_step, []

        def step_then_fail(*args, **kwargs):
            steps.append(1)
            if len(steps) == fail_at:
                assert (run / "config.json").exists() and (run / "losses.csv").exists()
                raise failure
            return original_step(*args, **kwargs)

        trainer.train_step = step_then_fail
        return trainer

    for failure in (RuntimeError("boom"), KeyboardInterrupt()):
        run = tmp_path / "first_step"
        with pytest.raises(type(failure)):
            failing_trainer(run, 1, failure).run()
        assert not run.exists(), sorted(run.rglob("*"))
    logged = tmp_path / "logged"
    with pytest.raises(RuntimeError):
        failing_trainer(logged, 3, RuntimeError("boom"), sample_every=1, log_every=1).run()
    assert len((logged / "losses.csv").read_text().splitlines()) == 3 and any((logged / "samples").iterdir())
    saved = tmp_path / "saved"
    with pytest.raises(KeyboardInterrupt):
        failing_trainer(saved, 2, KeyboardInterrupt(), checkpoint_every_steps=1).run()
    assert state_of(saved / "checkpoints" / "latest.safetensors")["step"] == 1


def test_a_failed_run_keeps_a_folder_that_holds_anything_else(facades_dir, tmp_path, monkeypatch) -> None:
    """Only what the run itself writes before its first checkpoint counts as of no value: a file that turns up
    in the new run folder meanwhile (another program's, the user's) keeps it, and the file, as they are."""
    run = tmp_path / "run"

    def fail_after_a_file_appears(*args, **kwargs):
        (run / "notes.txt").write_text("mine")
        raise Pix2PixError("the dataset is empty")

    monkeypatch.setattr("pix2pix_core.train.build_dataset", fail_after_a_file_appears)
    with pytest.raises(Pix2PixError, match="empty"):
        Trainer(tiny_config(data=str(facades_dir), out=str(run))).run()
    assert [p.name for p in run.iterdir()] == ["notes.txt"] and (run / "notes.txt").read_text() == "mine"


# ------------------------------------------------------------------------------------ exact resume
def _weights(path: Path, prefix: str) -> dict[str, torch.Tensor]:
    return {k: v for k, v in load_file(str(path)).items() if k.startswith(prefix)}


def test_stop_and_resume_is_exact(facades_dir, tmp_path) -> None:
    """8 steps straight == 4 steps, stop(), resume to 8 (mid-epoch both times): identical fp32 weights,
    discriminator and Adam moments included. Dropout RNG, data order and jitter all resume exactly."""
    base = dict(data=str(facades_dir), max_steps=8, epochs=3, epochs_decay=1, precision="fp32")
    straight = Trainer(tiny_config(out=str(tmp_path / "straight"), **base)).run()
    assert (straight.reason, straight.step) == ("max_steps", 8)

    trainer = Trainer(tiny_config(out=str(tmp_path / "resumed"), **base))
    trainer.callbacks.append(lambda e: trainer.stop() if isinstance(e, LossEvent) and e.step == 4 else None)
    first = trainer.run()
    assert (first.reason, first.step) == ("stopped", 4)
    assert state_of(first.checkpoint)["batch"] == 1  # 3 batches per epoch: stopped inside epoch 2
    second = Trainer(resume_config(tmp_path / "resumed"), resume=True).run()
    assert (second.reason, second.step) == ("max_steps", 8)

    for prefix in ("G.", "D.", "optG.", "optD."):
        a, b = _weights(straight.checkpoint, prefix), _weights(second.checkpoint, prefix)
        assert a.keys() == b.keys() and a
        different = [k for k in a if not torch.equal(a[k], b[k])]
        assert not different, f"{prefix}: {different[:5]}"


def test_a_gpu_run_keeps_its_cuda_random_state_for_resume(facades_dir, tmp_path, monkeypatch):
    """On a GPU dropout and DiffAugment draw from the device's generator: a checkpoint keeps its state and
    a resume sets it back (torch.cuda stubbed: this machine has no GPU; the run itself is on the CPU)."""
    from pix2pix_core.distributed import Context
    from pix2pix_core.train import Position

    trainer = Trainer(tiny_config(data=str(facades_dir), out=str(tmp_path / "run"), max_steps=2))
    trainer.run()
    cuda_state = torch.arange(16, dtype=torch.uint8)
    restored = []
    monkeypatch.setattr(torch.cuda, "get_rng_state", lambda device=None: cuda_state.clone())
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda state, device=None: restored.append(state))
    gpu = Context(device=torch.device("cuda"))
    trainer._context = gpu
    path = trainer.save(Position(0, 1, 2))
    assert torch.equal(read_checkpoint(path)[0]["rng.cuda"], cuda_state)
    trainer._restore(gpu)
    assert len(restored) == 1 and torch.equal(restored[0], cuda_state)


def test_ctrl_c_stops_after_the_step_with_a_checkpoint(facades_dir, tmp_path) -> None:
    """Ctrl-C raised KeyboardInterrupt mid-step: the steps since the last checkpoint were lost, and before the
    first one `--resume` had nothing to resume. Now the first Ctrl-C ends the run as Stop does."""
    run = tmp_path / "run"
    args = train_args(facades_dir, run, "--max-steps", "400")
    args[args.index("--checkpoint-every-steps") + 1] = "1000"  # no checkpoint but the one Ctrl-C asks for
    process = run_cli(args)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and process.poll() is None and len(csv_steps_or_none(run)) < 3:
            time.sleep(0.05)
        assert process.poll() is None, f"finished before Ctrl-C: {process.communicate()}"
        os.kill(process.pid, signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, err  # stopped, not finished: scripts.ablate resumes such a row
    assert "stopping after the current step, with a checkpoint" in err and "stopped at step" in out
    assert "--resume" in out
    stopped_at = state_of(run / "checkpoints" / "latest.safetensors")["step"]
    assert 3 <= stopped_at < 400


def csv_steps_or_none(run: Path) -> list[int]:
    try:
        return csv_steps(run)
    except (OSError, ValueError, IndexError):
        return []


def test_a_loss_row_cut_short_by_a_kill_is_dropped_on_resume(facades_dir, tmp_path) -> None:
    """A kill mid-write left "14" of "149,0,..." as a row of one field; resume kept it in the history."""
    run = tmp_path / "run"
    config = tiny_config(data=str(facades_dir), out=str(run), max_steps=4)
    Trainer(config).run()
    path = run / "losses.csv"
    path.write_text(path.read_text() + "1")  # the start of step 5's row, then the kill
    Trainer(tiny_config(data=str(facades_dir), out=str(run), max_steps=6), resume=True).run()
    rows = [line.split(",") for line in path.read_text().splitlines()]
    assert all(len(row) == len(rows[0]) for row in rows) and [int(r[0]) for r in rows[1:]] == [1, 2, 3, 4, 5, 6]
    assert json.loads((run / "config.json").read_text())["max_steps"] == 6 and not list(run.glob(".config*"))


def test_a_fresh_run_never_overwrites_a_run_folder(facades_dir, tmp_path, capsys) -> None:
    """A second `train` into the same --out cut losses.csv to its own steps and mixed the samples."""
    run = tmp_path / "run"
    Trainer(tiny_config(data=str(facades_dir), out=str(run), max_steps=2)).run()
    history = (run / "losses.csv").read_text()
    assert main(train_args(facades_dir, run, "--max-steps", "1")) == 2
    assert "already holds a run" in capsys.readouterr().err and (run / "losses.csv").read_text() == history
    assert main(train_args(facades_dir, run, "--max-steps", "3", "--resume")) == 0
    first_line = capsys.readouterr().out.splitlines()[0]  # what trains, before the first step
    assert first_line.startswith("pix2pix facades (BtoA) from ") and "resuming from step 2" in first_line


def hold_run_folder(out: Path) -> subprocess.Popen:
    """Another process holding `out`'s run folder lock (as a `train` writing there does) until killed."""
    script = ("import sys\nfrom pathlib import Path\nfrom pix2pix_core.run_folder import RunFolder\n"
              "Path(sys.argv[1]).mkdir(parents=True, exist_ok=True)\nRunFolder(sys.argv[1]).lock()\n"
              "print('held', flush=True)\nsys.stdin.read()\n")
    holder = subprocess.Popen([sys.executable, "-c", script, str(out)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
    assert holder.stdout.readline() == b"held\n"
    return holder


def test_a_second_train_into_a_folder_a_run_is_writing_to_is_refused(facades_dir, tmp_path, capsys) -> None:
    """Two `train` commands started at once into the same new --out both wrote there (their checkpoints
    interleaved). The second is refused in one line naming the folder and the other process; a killed holder's
    lock file blocks neither a new run nor its --resume."""
    run = tmp_path / "run"
    holder = hold_run_folder(run)
    try:
        assert main(train_args(facades_dir, run, "--max-steps", "1")) == 2
        error = capsys.readouterr().err
        assert error == (f"error: another training run is writing to {run} (pid {holder.pid} on "
                         f"{os.uname().nodename} since {error.split(' since ')[1][:8]}): wait for it to end, or give "
                         "this one another --out\n")
        assert sorted(p.name for p in run.iterdir()) == [".train.lock"]  # nothing written, nothing removed
    finally:
        holder.kill()  # SIGKILL: its lock file stays, no longer locked
        holder.wait()
    assert (run / ".train.lock").exists()
    assert main(train_args(facades_dir, run, "--max-steps", "1")) == 0
    assert not (run / ".train.lock").exists()  # let go with the run
    holder = hold_run_folder(run)
    holder.kill()
    holder.wait()
    assert main(train_args(facades_dir, run, "--max-steps", "2", "--resume")) == 0
    assert state_of(run / "checkpoints" / "latest.safetensors")["step"] == 2


def test_the_run_folder_lock_is_held_while_training_and_let_go_after(facades_dir, tmp_path) -> None:
    """In one process (the app's Train tab, a notebook): a Trainer into a folder another holds is refused, and
    while a run trains it holds the lock itself."""
    run = tmp_path / "run"
    run.mkdir()
    other = run_folder.RunFolder(run)
    other.lock()
    config = tiny_config(data=str(facades_dir), out=str(run), max_steps=1)
    with pytest.raises(Pix2PixError, match=f"another training run is writing to {run} \\(pid {os.getpid()} "):
        Trainer(config).run()
    other.unlock()
    seen = []

    def try_the_lock(event) -> None:
        if isinstance(event, LossEvent):
            with pytest.raises(Pix2PixError, match="another training run is writing to"):
                run_folder.RunFolder(run).lock()
            seen.append(event.step)

    Trainer(config, callbacks=[try_the_lock]).run()
    assert seen == [1] and not (run / ".train.lock").exists()
    other.lock()  # let go: the next one takes it
    other.unlock()


def test_a_run_refused_by_the_lock_removes_nothing_of_the_other_run(tmp_path, monkeypatch) -> None:
    """Both runs looked for the folder before either made it: the refused one took it for its own, and its
    clean-up after the refusal would have removed the other run's config.json and losses.csv."""
    run = tmp_path / "run"
    other = run_folder.RunFolder(run)
    real_check = run_folder.check_writable

    def other_run_starts_first(folder, needed_bytes):
        real_check(folder, needed_bytes)
        other.lock()
        (run / "config.json").write_text("{}")
        (run / "losses.csv").write_text("step,epoch\n")

    monkeypatch.setattr(run_folder, "check_writable", other_run_starts_first)
    refused = run_folder.RunFolder(run)
    with pytest.raises(Pix2PixError, match="another training run is writing to"):
        refused.check(1000)
    assert not refused.remove_if_unused()
    assert sorted(p.name for p in run.iterdir()) == [".train.lock", "config.json", "losses.csv"]
    other.unlock()


def test_a_run_folder_where_locks_do_not_work_keeps_no_lock_file(tmp_path, monkeypatch) -> None:
    """Where flock fails (NFS without lockd, some FUSE mounts) the run goes on unlocked, but the lock file opened to
    try was left there: a run that failed before its first checkpoint could not remove the folder it created (the
    file was in it), and a finished run left it behind for good."""
    fcntl = pytest.importorskip("fcntl")

    def no_locks(fd, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    folder = run_folder.RunFolder(tmp_path / "new" / "run")
    with pytest.warns(UserWarning, match="file locks do not work in"):
        folder.check(1000)
    assert list(folder.out.iterdir()) == []
    assert folder.remove_if_unused() and list(tmp_path.iterdir()) == []


def lock_like_another_users_folder(monkeypatch, locked: Path) -> None:
    """What a non-root user meets below another user's 0700 folder (the tests may run as root): looking at a path
    inside it, or making one, is EACCES."""
    import errno as errno_module

    real_stat, real_mkdir = Path.stat, os.mkdir

    def denied(path) -> OSError:
        return PermissionError(errno_module.EACCES, os.strerror(errno_module.EACCES), str(path))

    def stat(self, *args, **kwargs):
        if locked in Path(self).parents:
            raise denied(self)
        return real_stat(self, *args, **kwargs)

    def mkdir(path, *args, **kwargs):
        if locked in Path(path).parents:
            raise denied(path)
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(Path, "stat", stat)
    monkeypatch.setattr(os, "mkdir", mkdir)


def test_one_epoch_checkpoint_that_will_not_fit_is_named_in_the_singular(tmp_path, monkeypatch) -> None:
    """A run keeping one epoch checkpoint was warned about 'the 1 epoch checkpoints this run will keep'."""
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(run_folder.shutil, "disk_usage", lambda path: usage(10**12, 0, 300_000_000))
    with pytest.warns(UserWarning, match=r"^the epoch checkpoint this run will keep \(--save-every\), with the latest"):
        run_folder.RunFolder(tmp_path / "run").check(120_000_000, kept=1)  # 2 fit, not 3
