"""What the app keeps between requests: the model registry and the one training job.

Both live in an `AppState` created by `demo.build_app`; there are no module-level globals, so tests can
build several apps with different folders. Every viewer of the page sees the same training job, which is
why a page reload or a second browser shows the run that is going.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
import traceback
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Optional

from PIL import Image

from pix2pix_core.checkpoint import config_of, export_generator, read_header
from pix2pix_core.collapse import CYCLEGAN_REMEDY
from pix2pix_core.config import TrainConfig
from pix2pix_core.errors import Pix2PixError
from pix2pix_core.inference import Translator
from pix2pix_core.train import (LOSS_NAMES, MODELS, CheckpointEvent, FinishedEvent, LoadingEvent, LossEvent,
                                SampleEvent, Trainer)

from .disk import CACHE, prune_runs, remove_quietly
from .image_work import OutputFiles, WorkLanes
from .messages import MessageCleaner, TypedTextError, quoted, shorten
from .train_settings import TASK_LABELS, FormSettings

log = logging.getLogger("pix2pix_studio")

EXAMPLES = Path(__file__).parent / "examples"
MAX_ETA_SECONDS = 365 * 24 * 3600  # an ETA above a year says "never" as well as any bigger number
MAX_FOLDER_TEXT = 1024  # characters of a typed dataset folder
MAX_STATUS_NUMBER = 10 ** 12  # steps and epochs in /train_status (the app's caps keep runs far below)
# Steps of a run's loss history kept for the plots (which show at most 400): every step was kept, 420 bytes each,
# and every page's timer copied it and made a table of it every second: at 400,000 steps (the cap is 2,000,000)
# 167 MB, and 0.6 s of CPU per open page per second. Beyond this many, every other step kept is let go.
MAX_HISTORY_STEPS = 2000


# ------------------------------------------------------------------------------------------ models
@dataclass(frozen=True)
class ModelInfo:
    name: str  # file stem, shown in the pickers and accepted by the API
    path: Path
    task: str
    stamp: tuple[int, int] = (0, 0)  # the file's (mtime_ns, size) when scanned: a file replaced is another model


class ModelRegistry:
    """The generators found in a few folders, by task; loads each on first use and keeps a few loaded.

    Only names from this registry are accepted by the API, so a request cannot make the app open an
    arbitrary file.
    """

    def __init__(self, folders: list[Path], device: str = "auto", keep_loaded: int = 4):
        self.folders, self.device, self.keep_loaded = folders, device, keep_loaded
        self._lock = threading.Lock()
        self._models: dict[str, ModelInfo] = {}
        # by (name, direction), with the ModelInfo it was loaded from
        self._loaded: OrderedDict[tuple[str, str], tuple[ModelInfo, Translator]] = OrderedDict()
        self.refresh()

    def refresh(self) -> None:
        """Rescan the folders; files that are not pix2pix generators (e.g. a segmenter) are skipped."""
        found: dict[str, ModelInfo] = {}
        for folder in self.folders:
            for path in sorted(Path(folder).glob("*.safetensors")) if Path(folder).is_dir() else []:
                task = _checkpoint_task(path)
                if task is not None:
                    found.setdefault(path.stem, ModelInfo(path.stem, path, task, _stamp(path)))
        with self._lock:
            self._models = found
            for key in [key for key, (info, _) in self._loaded.items() if found.get(key[0]) != info]:
                del self._loaded[key]  # removed, or replaced by another file of that name

    def names(self, task: str) -> list[str]:
        with self._lock:
            return [m.name for m in self._models.values() if m.task == task]

    def names_of_all(self) -> list[str]:
        with self._lock:
            return list(self._models)

    def default(self, task: str) -> Optional[str]:
        names = self.names(task)
        return names[0] if names else None

    def info(self, name: str) -> ModelInfo:
        with self._lock:
            if name not in self._models:
                raise TypedTextError(f"unknown model {quoted(name)}; available: "
                                     f"{shorten(', '.join(self._models) or 'none', 200)}", name)
            return self._models[name]

    def start_point(self, name: str, task: str) -> tuple[Path, TrainConfig]:
        """The file and config of model `name` for a `task` run that fine-tunes it: a model of the run's own task
        (a pix2pix model of that task, or for an unpaired run a CycleGAN, an official one-generator import
        included). Read from the header: the trainer loads the weights, and says which generator starts fresh."""
        with self._lock:
            info = self._models.get(name)
        if info is None:
            raise TypedTextError(f"cannot start from {quoted(name)}: not a model of this app (the picker lists them; "
                                 "reload the page if it was removed since the page loaded)", name)
        if info.task != task:  # tasks named as the command line does: the cleaner names them as the page does
            raise TypedTextError(f"cannot start from {quoted(name)}: it is a model of the {info.task} task; a run of "
                                 f"the {task} task starts from a model of that task or from scratch", name)
        return info.path, config_of(read_header(info.path), info.path)

    def translator(self, name: Optional[str], task: str, direction: str = "AtoB") -> Translator:
        """The loaded model `name` (or the task's default when empty), which must be a `task` model;
        `direction` BtoA picks an unpaired (CycleGAN) model's B -> A generator."""
        name = name or self.default(task)
        if not name:
            raise Pix2PixError(f"no model of the {task} task found; put one in the checkpoints folder or train one")
        info = self.info(name)
        if _stamp(info.path) != info.stamp:  # exported again over it (or removed) since the scan: read it again
            self.refresh()
            info = self.info(name)
        if info.task != task:
            raise TypedTextError(f"model {quoted(name)} is a model of the {info.task} task, not of the {task} task",
                                 name)  # a name sent: the task's default is a model of the task
        key = (name, direction)
        with self._lock:
            if self._loaded.get(key, (None,))[0] == info:
                self._loaded.move_to_end(key)
                return self._loaded[key][1]
        translator = Translator.load(info.path, device=self.device, direction=direction)  # slow: outside the lock
        with self._lock:
            if self._loaded.get(key, (None,))[0] == info:  # another request loaded it meanwhile: one copy in memory
                return self._loaded[key][1]
            if self._models.get(name) == info:  # not cached if a refresh removed it (or moved it) meanwhile
                self._loaded[key] = (info, translator)
                while len(self._loaded) > self.keep_loaded:
                    self._loaded.popitem(last=False)
        return translator


def _stamp(path: Path) -> tuple[int, int]:
    """(mtime_ns, size) of a model file; (0, 0) when it is gone."""
    try:
        status = path.stat()
    except OSError:
        return (0, 0)
    return (status.st_mtime_ns, status.st_size)


def _checkpoint_task(path: Path) -> Optional[str]:
    """The task stored in a checkpoint's header (reads the header only, never the weights)."""
    try:
        metadata = read_header(path)
        if metadata.get("kind") not in ("generator", "training"):
            return None  # another kind of model (e.g. the facade segmenter) living in the same folder
        return TrainConfig.from_json(metadata["config"]).task
    except (Pix2PixError, ValueError, KeyError, TypeError) as exc:
        log.warning("skipping %s: not a pix2pix checkpoint (%s)", path, exc)
        return None


# ------------------------------------------------------------------------------------------ training
@dataclass
class JobSnapshot:
    """A consistent copy of the job for the UI and the API, taken under the lock."""

    version: int  # bumps on every change: the UI skips redrawing when it has seen this version
    phase: str  # idle | preparing | loading | running | stopping | finished | stopped | failed
    run: str = ""
    step: int = 0
    total_steps: int = 0
    epoch: int = 0  # the epoch of the latest step, counted from 1 as the page says it (0 before the first step)
    epochs: int = 0  # the run's epochs in all (epochs + decay epochs)
    progress: float = 0.0
    images_per_second: float = 0.0
    eta_seconds: float = 0.0
    losses: dict[str, float] = field(default_factory=dict)
    message: str = ""
    model: str = ""  # the exported model's name once the run has ended
    history: list[tuple[int, str, float]] = field(default_factory=list)  # (step, loss name, value)
    loss_names: tuple[str, ...] = LOSS_NAMES  # the running model's (pix2pix or CycleGAN)
    sample: Optional[Image.Image] = None

    @property
    def active(self) -> bool:
        return self.phase in ("preparing", "loading", "running", "stopping")

    def as_dict(self) -> dict:
        """JSON-friendly status for /train_status (no plot history, no image); every number finite and
        bounded, so no run, however odd its settings, can make this endpoint fail for its callers."""
        return {"phase": self.phase, "running": self.active, "run": shorten(self.run, 100),
                "step": int(bounded(self.step, MAX_STATUS_NUMBER)),
                "epoch": int(bounded(self.epoch, MAX_STATUS_NUMBER)),
                "epochs": int(bounded(self.epochs, MAX_STATUS_NUMBER)),
                "progress": round(bounded(self.progress, 1.0), 4),
                "images_per_second": round(bounded(self.images_per_second, 1e6), 2),
                "eta_seconds": int(bounded(self.eta_seconds, MAX_ETA_SECONDS)),
                "losses": {k: round(v, 4) for k, v in self.losses.items() if math.isfinite(v)},
                "message": shorten(self.message), "model": shorten(self.model, 100)}


def bounded(value, high: float) -> float:
    """`value` as a float in [0, high]; NaN becomes 0, anything too large becomes `high`."""
    try:
        value = float(value)
    except (TypeError, ValueError, OverflowError):
        return high if isinstance(value, int) else 0.0
    return 0.0 if math.isnan(value) else min(max(value, 0.0), high)


class TrainingJob:
    """At most one training run per app, in a background thread, observed through trainer events."""

    def __init__(self, runs_dir: Path, models_dir: Path, on_model: Callable[[Path], None],
                 clean: Callable[[str], str] = shorten, on_end: Callable[[], None] = lambda: None):
        self.runs_dir, self.models_dir, self.on_model = runs_dir, models_dir, on_model
        self.clean, self.on_end = clean, on_end  # message cleaner (no server paths); called after each run
        self._lock = threading.Lock()
        self._state = JobSnapshot(version=0, phase="idle", message="No training run yet.")
        self._trainer: Optional[Trainer] = None
        self._method = "pix2pix"  # config.model of the latest run
        self._augmented = False  # whether the latest run had DiffAugment on D (the Quick demo has)
        self._thread: Optional[threading.Thread] = None
        self._latest = ""  # the run going now, or the one that ended last
        self._settings: Optional[FormSettings] = None  # the form's fields of the latest run's Start
        self._preparing = self._cancelled = False  # a Start is unpacking or checking (see `preparing`)
        self._history_every, self._history_steps = 1, 0  # the loss history: steps between entries, steps in it

    @contextlib.contextmanager
    def preparing(self, what: str):
        """Hold the job for a Start that is still unpacking its zip or checking its settings: a second Start is
        refused, and Stop cancels this one (its `start` then raises, and the caller removes its upload)."""
        with self._lock:
            self._refuse_if_active()
            self._preparing, self._cancelled = True, False
            previous = self._state  # shown again if this Start fails: the last run's status, plots and sample
            self._state = JobSnapshot(version=previous.version + 1, phase="preparing", message=what)
        try:
            yield
        finally:
            with self._lock:
                if self._preparing:  # start() never took over: an error, or a Stop
                    self._preparing = False
                    if self._cancelled:
                        self._update(phase="stopped", message="Stopped before the run started.")
                    else:
                        self._state = replace(previous, version=self._state.version + 1)

    def snapshot(self) -> JobSnapshot:
        with self._lock:
            return replace(self._state, history=list(self._state.history), losses=dict(self._state.losses))

    def start(self, config: TrainConfig, init_generator: Optional[Path] = None,
              remove_after: Optional[Path] = None, settings: Optional[FormSettings] = None) -> str:
        """Start a run, or raise Pix2PixError when one is going or the settings are impossible.

        `remove_after` (an unpacked upload, with its dataset cache) is deleted when the run ends, however it
        ends, once the trainer has closed the cache's files. `settings` are the form's fields of this Start, shown
        by `active_settings` while the run goes.
        """
        with self._lock:
            if not self._preparing:
                self._refuse_if_active()
            elif self._cancelled:
                raise Pix2PixError("stopped before the run started")
            name = self._new_run_name(config.task)
            config = replace(config, out=str(self.runs_dir / name))
            trainer = Trainer(config, callbacks=[self._on_event], init_generator=init_generator)  # validates
            self._trainer, self._method, self._latest, self._preparing = trainer, config.model, name, False
            self._augmented = bool(config.diff_augment)
            self._history_every, self._history_steps = 1, 0
            self._settings = settings
            self._state = JobSnapshot(version=self._state.version + 1, phase="loading", run=name,
                                      epochs=config.total_epochs, message=f"{name}: loading the dataset...",
                                      loss_names=tuple(MODELS[config.model].LOSS_NAMES))
            self._thread = threading.Thread(target=self._run, args=(trainer, name, remove_after),
                                            name=f"train-{name}", daemon=True)
            self._thread.start()
            return f"Started {name}."

    def active_settings(self) -> Optional[FormSettings]:
        """The form's fields of the run that is going, for a page opened meanwhile; None when no run is going
        (idle, ended, or a Start still checking its settings): that page's form then stays as it is."""
        with self._lock:
            return self._settings if self._state.active and not self._preparing else None

    def refuse_if_active(self) -> None:
        """Raise Pix2PixError naming the run that is going, if one is."""
        with self._lock:
            self._refuse_if_active()

    def _refuse_if_active(self) -> None:
        if self._preparing:
            raise Pix2PixError("another Start is still unpacking its zip or checking its settings; wait a moment")
        if self._state.active:
            raise Pix2PixError(f"a training run is already going ({self._state.run}, step {self._state.step}); "
                               f"stop it first")

    def stop(self) -> str:
        """Ask the run to end: while loading at once, while training after the current step (it saves a
        checkpoint); harmless when idle."""
        with self._lock:
            if self._preparing:
                self._cancelled = True
                self._update(phase="stopping", message="stopping before the run starts...")
                return "Stopping before the run starts."
            if not self._state.active or self._trainer is None:
                return "No training run is going."
            self._trainer.stop()
            when = "after this step" if self._state.step else "now"
            self._update(phase="stopping", message=f"{self._state.run}: stopping {when}...")
            return f"Stopping {self._state.run}."

    @property
    def latest_run(self) -> str:
        """The run going now, or the one that ended last ("" before any): never pruned."""
        with self._lock:
            return self._latest

    def wait(self, timeout: Optional[float] = None) -> None:
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    # -------------------------------------------------------------------------------------- internals
    def _new_run_name(self, task: str) -> str:
        base = f"{task}-{time.strftime('%Y%m%d-%H%M%S')}"
        name, index = base, 1
        while (self.runs_dir / name).exists() or (self.models_dir / f"{name}.safetensors").exists():
            index += 1
            name = f"{base}-{index}"
        return name

    def _update(self, **changes) -> None:
        """Apply changes to the state and bump its version; the caller holds the lock."""
        for key, value in changes.items():
            setattr(self._state, key, value)
        self._state.version += 1

    def _on_event(self, event) -> None:
        """Trainer callback, called on the training thread."""
        with self._lock:
            if isinstance(event, LossEvent):
                self._keep_history(event)
                total = round(bounded(event.step / event.progress, MAX_STATUS_NUMBER)) if event.progress > 0 else 0
                phase = "stopping" if self._state.phase == "stopping" else "running"
                self._update(phase=phase, step=event.step, epoch=event.epoch + 1,  # the trainer's is 0-based
                             progress=bounded(event.progress, 1.0),
                             total_steps=total, images_per_second=bounded(event.images_per_second, 1e6),
                             eta_seconds=bounded(event.eta_seconds, MAX_ETA_SECONDS), losses=dict(event.losses),
                             message=self._state.message if phase == "stopping" else f"{self._state.run}: training")
            elif isinstance(event, LoadingEvent):
                if self._state.phase == "loading":  # a stop asked meanwhile keeps its "stopping" message
                    self._update(message=f"{self._state.run}: loading {event.done}/{event.total} images")
            elif isinstance(event, SampleEvent):
                self._update(sample=event.image.copy())
            elif isinstance(event, CheckpointEvent):
                self._update(message=f"{self._state.run}: checkpoint saved at step {event.step}")

    def _keep_history(self, event: LossEvent) -> None:
        """Add the event's losses to the plots' history, which keeps at most MAX_HISTORY_STEPS steps spread over
        the whole run: past that, every other step kept goes and only every second step is kept from then on.
        The latest step is kept too, until the next one replaces it: the plots end where the run is (they ended
        up to 2^n - 1 steps behind it, and missed a last step off that grid)."""
        entries = [(event.step, k, event.losses[k]) for k in self._state.loss_names if k in event.losses]
        if not entries:
            return
        history = self._state.history
        if history and history[-1][0] % self._history_every:  # the previous latest, off the grid: replaced
            latest = history[-1][0]
            while history and history[-1][0] == latest:
                history.pop()
            self._history_steps -= 1
        history.extend(entries)
        self._history_steps += 1
        if self._history_steps > MAX_HISTORY_STEPS:
            self._history_every *= 2
            history[:] = [entry for entry in history if entry[0] % self._history_every == 0 or entry[0] == event.step]
            self._history_steps = len({step for step, _, _ in history})

    def _run(self, trainer: Trainer, name: str, remove_after: Optional[Path]) -> None:
        failure = ""
        try:
            result = trainer.run()
        except Pix2PixError as exc:
            failure = f"{name} failed: {exc}"
        except Exception as exc:  # a bug, not a user mistake: keep the traceback in the server log
            log.error("training run %s crashed:\n%s", name, traceback.format_exc())
            failure = f"{name} crashed ({type(exc).__name__}); details are in the server log"
        finally:
            # before the job says the run ended (a failed run said so first: its upload and cache stayed a while)
            if remove_after is not None:
                remove_quietly(remove_after)
        if failure:
            self._end("failed", failure)
            return
        try:
            self._export(result, name)
        except Exception as exc:  # a bug or MemoryError: the job must not stay "running" for good
            log.error("exporting the model of %s crashed:\n%s", name, traceback.format_exc())
            self._end("failed", f"{name} ended, but exporting its model crashed ({type(exc).__name__}); details "
                                "are in the server log")

    def _export(self, result: FinishedEvent, name: str) -> None:
        """Export the generator next to the other models, so the pickers of the other tabs list it."""
        phase = "stopped" if result.reason == "stopped" else "finished"
        if result.reason == "diverged":
            phase = "failed"
        if result.reason == "collapsed":  # its weights make noise: not worth a place in the pickers
            if self._method == "cyclegan":  # the app's DiffAugment box is refused for CycleGAN
                advice = (f"CycleGAN has no DiffAugment: train from the command line with {CYCLEGAN_REMEDY} or "
                          "another --seed.")
            elif self._augmented:  # the remedy was on already: the app's runs all use seed 0, so a Start repeats it
                advice = ("it had DiffAugment on already; train from the command line with another --seed (the app's "
                          "runs use seed 0).")
            else:
                advice = "start again with DiffAugment ticked (it kept D from winning in the runs measured)."
            self._end("failed", f"{name} stopped at step {result.step}: the GAN collapsed (the discriminator "
                                f"won and the outputs turned to noise; see the last samples). No model saved: {advice}")
            return
        if result.checkpoint is None or result.step == 0:
            self._end(phase, f"{name} ended ({result.reason}) before a training step; no model saved. "
                             f"{result.message}".strip())
            return
        try:
            # a CycleGAN ships both generators in one file: the Translate section picks the direction
            both = {"direction": "both"} if self._method == "cyclegan" else {}
            path = export_generator(result.checkpoint, self.models_dir / f"{name}.safetensors", **both)
            self.on_model(path)
        except (Pix2PixError, OSError) as exc:
            self._end("failed", f"{name} ended but its model could not be exported: {exc}")
            return
        where = "the Translate section's picker" if self._method == "cyclegan" else "the model pickers"
        self._end(phase, f"{name} {result.reason} at step {result.step}: model {name!r} is ready in {where}. "
                         f"{result.message}".strip(), model=name)

    def _end(self, phase: str, message: str, model: str = "") -> None:
        with self._lock:
            self._trainer = None
            self._update(phase=phase, message=self.clean(message), model=model, eta_seconds=0.0)
        try:
            self.on_end()
        except Exception:  # housekeeping must never hide how the run ended
            log.exception("after-run housekeeping failed")


# ------------------------------------------------------------------------------------------ the app
@dataclass
class AppState:
    """Folders, models and the training job of one app instance."""

    checkpoints_dir: Path
    data_root: Path
    runs_dir: Path
    device: str = "auto"
    runs_max_bytes: int = 5_000_000_000  # cap on the runs folder (oldest runs removed first)
    train_memory_bytes: Optional[int] = None  # training memory budget; None = half the available memory
    models: ModelRegistry = field(init=False)
    job: TrainingJob = field(init=False)

    def __post_init__(self):
        self.data_root = self.data_root.resolve()
        self.models_dir = self.runs_dir / "models"
        self.uploads_dir = self.runs_dir / "uploads"
        self.cache_dir = self.runs_dir / CACHE  # data-root datasets' disk caches (an upload's own goes with it)
        remove_quietly(self.uploads_dir)  # left by a server that was killed mid-run: no run owns them now
        self.models = ModelRegistry([self.checkpoints_dir, self.models_dir], device=self.device)
        self.clean = MessageCleaner({self.data_root: "", self.uploads_dir: "upload", self.runs_dir: "runs",
                                     Path(self.checkpoints_dir): "checkpoints", EXAMPLES: "examples"}, TASK_LABELS)
        self.job = TrainingJob(self.runs_dir, self.models_dir, on_model=lambda _path: self.models.refresh(),
                               clean=self.clean, on_end=self.prune_runs)
        self.lanes, self.outputs = WorkLanes(), OutputFiles()
        self._prune_lock = threading.Lock()

    def prune_runs(self, keep: tuple[str, ...] = ()) -> None:
        """Keep the runs folder under its cap, never touching the run that is going or just ended, nor the
        runs, models or `cache/<folder>` dataset caches named in `keep` (the model a fine-tune starts from,
        the cache a Start will read). One prune at a time: the end of a run and a Start may ask at once."""
        with self._prune_lock:
            if prune_runs(self.runs_dir, self.runs_max_bytes, keep={self.job.latest_run, *keep} - {""},
                          skip=(self.uploads_dir,)):
                self.models.refresh()

    def data_folder(self, text: str) -> Path:
        """A dataset folder typed by a user, accepted only inside the data root (symlinks resolved)."""
        text = str(text).strip()
        if len(text) > MAX_FOLDER_TEXT or "\x00" in text:
            raise TypedTextError(f"dataset folder {quoted(text)}: not a usable folder name "
                                 f"(at most {MAX_FOLDER_TEXT} characters, no NUL)", text)
        try:
            typed = Path(text).expanduser()
            folder = (typed if typed.is_absolute() else self.data_root / typed).resolve()
            inside = folder.is_relative_to(self.data_root)
            exists = inside and folder.is_dir()
        except (OSError, ValueError, RuntimeError) as exc:  # name too long for the file system, a link loop
            raise TypedTextError(f"dataset folder {quoted(text)}: not a usable folder "
                                 f"({getattr(exc, 'strerror', None) or type(exc).__name__})", text) from None
        if not inside:
            raise TypedTextError(f"{quoted(text)} is outside the data root; put the dataset there or start the "
                                 f"app with --data-root", text)
        if not exists:
            raise Pix2PixError(f"dataset folder not found: {quoted(str(folder.relative_to(self.data_root)))} "
                               f"(inside the data root)")
        return folder

    def segmenter_path(self) -> Optional[Path]:
        """The facade segmenter for 'Start from a photo' (pix2pix_core.segment), when its file is there."""
        path = self.checkpoints_dir / "facades_segmenter.safetensors"
        return path if path.is_file() else None
