"""What a training run leaves on disk, written in one place: the run folder.

    OUT/config.json                  the run's settings, readable
    OUT/losses.csv                   one row per logged step
    OUT/samples/step_NNNNNNN.png     sample grids (and last.png)
    OUT/checkpoints/latest.safetensors, epoch_NNNN.safetensors   atomic, config in the header
    OUT/.train.lock                  while a run writes there: one run at a time (RunFolder.lock)

Only rank 0 writes; the training loop calls this and decides when.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import warnings
from pathlib import Path
from typing import Optional, Sequence

import torch
from PIL import Image

from .atomic_files import missing_folders, output_problem, remove_empty, remove_partial_files, replaced_atomically
from .checkpoint import FORMAT, atomic_save, read_header, remove_stale_temp_files
from .config import TrainConfig
from .errors import CheckpointError, Pix2PixError
from .file_lock import Outcome, attempt_lock, holder, say_holder, unlock
from .images import save_image_atomically

# What a run writes before it has trained anything: a config.json and the header of losses.csv. Once that run
# has failed they are worth nothing (nothing to resume, nothing to look at), so the folder it created for them goes
# again. A logged loss row or a sample picture shows how a run went wrong: their folder is kept.
EARLY_FILES = ("config.json", "losses.csv")
# held (flock) by the run writing to the folder; a killed run's file is left behind but no longer locked
LOCK_FILE = ".train.lock"


def check_writable(folder: Path, needed_bytes: int) -> None:
    """Fail before training, not after an hour, when the run folder cannot take checkpoints."""
    problem = output_problem(folder, folder=True)  # a file in the way: OSError would say "File exists"
    if problem:
        raise Pix2PixError(f"cannot write to the run folder {folder}: {problem}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".write_test"
        probe.write_bytes(b"ok")
        probe.unlink(missing_ok=True)  # a second run's probe at the same moment (the lock refuses it next) took it
    except OSError as exc:
        raise Pix2PixError(f"cannot write to the run folder {folder}: {exc.strerror or exc}") from None
    free = shutil.disk_usage(folder).free
    if free < needed_bytes:
        raise Pix2PixError(f"not enough disk space in {folder}: {free / 1e6:.0f} MB free, "
                           f"about {needed_bytes / 1e6:.0f} MB needed for checkpoints")


def _early_files_only(folder: Path) -> bool:
    """True when `folder` holds nothing but what a run writes before its first logged step (EARLY_FILES, with
    losses.csv no more than its header; an empty samples/ and checkpoints/): anything else (a loss row, a
    sample, a checkpoint, a user's file) may be of value."""
    for entry in folder.iterdir():
        if entry.is_symlink():
            return False
        if entry.name == "losses.csv" and entry.is_file() and len(entry.read_bytes().splitlines()) <= 1:
            continue
        if entry.name in ("config.json", LOCK_FILE) and entry.is_file():
            continue
        if entry.name in ("checkpoints", "samples") and entry.is_dir() and not any(entry.iterdir()):
            continue
        return False
    return True


class RunFolder:
    def __init__(self, out: str | Path):
        self.out = Path(out)
        self.checkpoint_dir = self.out / "checkpoints"
        self.latest = self.checkpoint_dir / "latest.safetensors"
        self.created: list[Path] = []  # the folders check() made (innermost first): remove_if_unused's to remove
        self._csv_handle = None
        self._csv_writer = None
        self._lock_fd: Optional[int] = None

    def check(self, checkpoint_bytes: int, kept: int = 0) -> None:
        """Writable, with room for two checkpoints of `checkpoint_bytes` (the model's `checkpoint_bytes`: latest
        and the next one while it is written); clears the partial files a killed run may have left (checkpoints,
        config.json, losses.csv, samples). A warning when the `kept` epoch checkpoints of its schedule will not
        fit as well (--save-every 10 over 200 epochs at the default ngf 64: 20 x 686 MB), since a run can be cut
        short instead (--max-steps) or old ones deleted. Takes the folder's lock (`lock`) right after the write
        probe, before it clears anything there."""
        size = checkpoint_bytes
        self.created = missing_folders(self.out)
        check_writable(self.out, needed_bytes=2 * size + 50_000_000)
        self.lock()
        ahead = max(kept - len(list(self.checkpoint_dir.glob("epoch_*.safetensors"))), 0)  # a resume wrote some
        free = shutil.disk_usage(self.out).free
        if ahead and (ahead + 2) * size > free:
            kept_ones = "the epoch checkpoint" if ahead == 1 else f"the {ahead} epoch checkpoints"
            warnings.warn(f"{kept_ones} this run will keep (--save-every), with the latest, need "
                          f"about {(ahead + 2) * size / 1e9:.1f} GB, and {free / 1e9:.1f} GB are free in {self.out}: "
                          f"a larger --save-every, or 0 to keep only the latest", stacklevel=2)
        remove_stale_temp_files(self.checkpoint_dir)
        for folder in (self.out, self.out / "samples"):  # config.json, losses.csv, sample pictures
            remove_partial_files(folder)

    def lock(self) -> None:
        """Hold the folder's lock until `unlock`: a second run started into the same folder (two `train` commands
        at once, the app's Train tab beside one) is refused in one line naming the folder and the run holding it,
        where both wrote there and their checkpoints interleaved. A flock: it dies with its process, so a killed
        run's lock does not block the `--resume` that follows it. Where locks do not work (no fcntl on Windows, a
        file system without them) the run goes on unlocked, with a warning on such a file system."""
        if self._lock_fd is not None:
            return
        lock_file = self.out / LOCK_FILE
        try:
            attempt = attempt_lock(lock_file)
        except OSError as exc:
            raise Pix2PixError(f"cannot lock the run folder {self.out}: {exc.strerror or exc}") from None
        if attempt.outcome is Outcome.HELD:
            self.created = []  # the other run's folder, whoever made it first: not this run's to remove
            raise Pix2PixError(f"another training run is writing to {self.out} ({holder(lock_file)}): wait for it "
                               "to end, or give this one another --out")
        if attempt.outcome is Outcome.NO_LOCKS:
            if attempt.why:
                warnings.warn(f"file locks do not work in {self.out} ({attempt.why}): a second run started into "
                              "this folder at once would not be refused", stacklevel=2)
            return
        say_holder(attempt.fd)
        self._lock_fd = attempt.fd

    def unlock(self) -> None:
        """Let go of the folder's lock (removing its lock file); nothing when not held."""
        if self._lock_fd is not None:
            fd, self._lock_fd = self._lock_fd, None
            unlock(fd, self.out / LOCK_FILE)

    def start(self, config: TrainConfig, loss_names: Sequence[str], resume: bool, resumed_step: int) -> None:
        """config.json, the samples folder and losses.csv opened for appending. On resume, rows after the
        checkpoint's step are dropped: a killed run may have logged steps it never saved, and they are
        about to be trained again."""
        (self.out / "samples").mkdir(parents=True, exist_ok=True)
        with replaced_atomically(self.out / "config.json") as handle:
            handle.write(json.dumps(json.loads(config.to_json()), indent=2).encode())
        path = self.out / "losses.csv"
        new = not (resume and path.exists())
        if not new:
            with open(path, newline="") as handle:
                rows = list(csv.reader(handle))
            # a row cut short by a kill mid-write ("14" of "149,0,...") has fewer fields than the header
            kept = rows[:1] + [r for r in rows[1:] if len(r) == len(rows[0]) and r[0].isdigit()
                               and int(r[0]) <= resumed_step]
            text = io.StringIO(newline="")
            csv.writer(text).writerows(kept)
            with replaced_atomically(path) as handle:  # a kill right now must not cost the whole loss history
                handle.write(text.getvalue().encode())
        self._csv_handle = open(path, "w" if new else "a", newline="")
        self._csv_writer = csv.writer(self._csv_handle)
        self._loss_names = tuple(loss_names)
        if new:
            self._csv_writer.writerow(["step", "epoch", *loss_names, "lr", "images_per_second"])

    def log_losses(self, step: int, epoch: int, losses: dict[str, float], lr: float, speed: float) -> None:
        self._csv_writer.writerow([step, epoch, *(f"{losses[k]:.5f}" for k in self._loss_names), f"{lr:.3e}", f"{speed:.2f}"])

    def save_sample(self, grid: Image.Image, name: str) -> Path:
        return save_image_atomically(grid, self.out / "samples" / f"{name}.png")  # a kill leaves no cut PNG

    def save_checkpoint(self, tensors: dict[str, torch.Tensor], config: TrainConfig, state: dict,
                        name: str = "latest") -> Path:
        """Atomically: tensors, with the config and the JSON state in the header. losses.csv is flushed
        first, so it never runs behind the checkpoint."""
        if self._csv_handle is not None:
            self._csv_handle.flush()
        metadata = {"format": FORMAT, "kind": "training", "config": config.to_json(), "state": json.dumps(state)}
        return atomic_save(tensors, metadata, self.checkpoint_dir / f"{name}.safetensors")

    def kept_checkpoint_before(self, step: int) -> Optional[tuple[Path, int]]:
        """The newest kept epoch_NNNN checkpoint written at or before `step`, with its step: where a run
        that went wrong after `step` can be taken up again. Unreadable files are skipped."""
        best: Optional[tuple[Path, int]] = None
        for path in sorted(self.checkpoint_dir.glob("epoch_*.safetensors")):
            try:
                saved = int(json.loads(read_header(path)["state"])["step"])
            except (CheckpointError, ValueError, KeyError, TypeError):
                continue
            if saved <= step and (best is None or saved > best[1]):
                best = (path, saved)
        return best

    def close(self) -> None:
        if self._csv_handle is not None:
            self._csv_handle.close()
            self._csv_handle = None

    def holds_run(self) -> bool:
        """Whether the folder holds a run's latest checkpoint; a folder this user may not look into (another
        user's) is one error line, as the write probe's, not a PermissionError traceback."""
        try:
            return self.latest.exists()
        except OSError as exc:
            raise Pix2PixError(f"cannot read the run folder {self.out}: {exc.strerror or exc}") from None

    def remove_if_unused(self) -> bool:
        """After a run that failed before its first checkpoint: remove the folder check() created (and the
        parents it created with it), when it holds only what the run wrote before its first logged step (a loss
        row or a sample shows how the run went wrong: kept). A folder that existed before (a resume, a folder
        the user made) or that holds anything else is left as it is. Housekeeping: a failure here is ignored, so
        that the run's own error is the one reported. True when removed."""
        if not self.created:
            return False
        try:
            self.close()
            if self.latest.exists() or not self.out.is_dir() or not _early_files_only(self.out):
                return False
            for name in EARLY_FILES:
                (self.out / name).unlink(missing_ok=True)
            for sub in (self.out / "samples", self.checkpoint_dir):
                if sub.is_dir():
                    sub.rmdir()  # empty (_early_files_only)
            self.unlock()  # held until now: no other run started into the folder while it was emptied
        except OSError:
            return False
        remove_empty(self.created)  # innermost first; a parent that holds something else now stays
        return not self.out.exists()


def diverged_message(folder: Optional[RunFolder], step: int, detail: str) -> str:
    kept = (f"the last good checkpoint {folder.latest} is kept" if folder and folder.latest.exists()
            else "no checkpoint was written")
    return f"training diverged at step {step} ({detail}); {kept}. Try a lower learning rate."
