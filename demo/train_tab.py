"""Tab "Train": start one pix2pix run in the background and watch it live.

The run lives in `AppState.job` (a thread), not in the page: a `gr.Timer` tick reads a snapshot of the
job every second, so reloading the page or opening a second browser shows the same run, and the page load
fills the form with that run's settings. When a run ends, its generator is exported next to the other models
and appears in the pickers of the other tabs.
"""

from __future__ import annotations

import contextlib
import functools
import html
import os
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Optional

import gradio as gr
import pandas as pd
from PIL import Image

from pix2pix_core.archive import extract_dataset_zip
from pix2pix_core.checkpoint import fine_tune_plan
from pix2pix_core.collapse import REMEDY_AUGMENTS
from pix2pix_core.config import CYCLEGAN_DEFAULTS, TrainConfig, recipe_settings
from pix2pix_core.errors import Pix2PixError
from pix2pix_core.resources import training_cache_folders

from . import translate_section
from .choices import Choice, Picker
from .disk import CACHE, remove_quietly
from .messages import quoted
from .dataset_line import (FOLDER_PLACEHOLDERS, dataset_summary, default_data, get_data_command,
                           running_dataset_summary)
from .state import EXAMPLES, AppState, JobSnapshot
from .train_settings import (DEFAULT_PRESET, PRESETS, TASKS, FormSettings, check_run_size, checked_numbers,
                             form_direction, with_settings)
from .ui import NAMES_MIN_WIDTH, user_errors
from .uploads import FileInput

# plotted apart from the L1 terms (pix2pix's G_L1, CycleGAN's cycle and identity), which are far larger
GAN_TERMS = ("G_GAN", "D_real", "D_fake", "G_GAN_AB", "G_GAN_BA", "D_A", "D_B")
# Fixed colours, so each loss keeps its colour from run to run
LOSS_COLOURS = {"G_GAN": "#e4572e", "D_real": "#17bebb", "D_fake": "#76b041", "G_L1": "#2e86de",
                "G_GAN_AB": "#e4572e", "G_GAN_BA": "#f3a712", "D_A": "#17bebb", "D_B": "#76b041",
                "cycle_A": "#2e86de", "cycle_B": "#8e44ad", "idt_A": "#7f8c8d", "idt_B": "#c0392b",
                "G_feat": "#f39c12"}
L1_TERMS = ("G_L1", "cycle_A", "cycle_B", "idt_A", "idt_B", "G_feat")  # G_feat: feature matching, x lambda_feat
SCRATCH = "from scratch"
ZIP_MAX_BYTES = 1_000_000_000  # an uploaded dataset zip may unpack to at most 1 GB...
ZIP_MAX_FILES = 20_000  # ...in at most this many files (the facades set is ~30 MB in 606 files)
MAX_PLOT_STEPS = 400  # points per loss curve sent to the browser each tick
DATASET_LINES_AT_ONCE = 2  # dataset lines computed at once (each lists a folder; the rest wait in the queue)


def task_settings(task: str, preset: str) -> dict:
    """TrainConfig fields for a task and preset: facades train with the shipped model's recipe; unpaired data
    with CycleGAN's official defaults (ResNet generators: 6 blocks up to 128 px, else 9) at the preset's size,
    without the preset's DiffAugment (pix2pix's)."""
    if task != "unpaired":
        return {**recipe_settings(task), **PRESETS[preset]}
    sized = {k: v for k, v in PRESETS[preset].items() if k not in ("netG", "diff_augment")}
    return {**CYCLEGAN_DEFAULTS, **sized, "netG": "resnet_6blocks" if sized["crop_size"] <= 128 else "resnet_9blocks"}


def fine_tuned(config: TrainConfig, base: TrainConfig) -> TrainConfig:
    """`config` for a run that starts from a model of config `base`: fine-tuning keeps the generator's
    architecture and its working size (the load size scaled as the preset scales it), whatever the preset says."""
    load = max(base.crop_size, round(base.crop_size * config.load_size / config.crop_size))
    return replace(config, netG=base.netG, ngf=base.ngf, norm=base.norm, dropout=base.dropout,
                   crop_size=base.crop_size, load_size=load)


def model_size_note(config: TrainConfig, preset_config: TrainConfig) -> str:
    """What a fine-tune trains at when its model's size is not the preset's (an official CycleGAN import is a
    256 px ResNet of width 64: a Quick demo run on it is far from quick); "" when they agree."""
    ours = (config.crop_size, config.netG, config.ngf)
    if ours == (preset_config.crop_size, preset_config.netG, preset_config.ngf):
        return ""
    return (f"; at the model's size, {config.crop_size} px, {config.netG}, ngf {config.ngf} (the preset's: "
            f"{preset_config.crop_size} px, {preset_config.netG}, ngf {preset_config.ngf})")


def field_visibility(task: str) -> tuple[bool, bool, bool]:
    """Which of (input side, λ L1, DiffAugment) the form shows for `task`: the input side only for custom pairs
    (facades' label map is always B, a colorizer reads photos, not halves: a choice there changed nothing); a
    CycleGAN (cycle and identity losses, its own collapse remedy) none of the three."""
    paired = task != "unpaired"
    return task in ("aligned", "paired"), paired, paired


def extract_zip(state: AppState, zip_path: str) -> Path:
    """Unpack an uploaded dataset zip under the runs folder, into a per-upload folder's data/ (its run's disk
    cache goes beside it, in cache/: `upload_cache`); path traversal, links and zip bombs are refused."""
    # named by the server, not after the upload: a 300-character zip name must not become a folder name
    root = state.uploads_dir / f"upload-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"
    try:
        result = extract_dataset_zip(zip_path, root / "data", max_total_bytes=ZIP_MAX_BYTES,
                                     max_files=ZIP_MAX_FILES)
    except BaseException:
        remove_quietly(root)
        raise
    return result.folder


def upload_root(state: AppState, folder: Path) -> Path:
    """The per-upload folder under uploads/ holding `folder` (a zip may wrap its data in one folder)."""
    return state.uploads_dir / folder.relative_to(state.uploads_dir).parts[0]


def upload_cache(state: AppState, folder: Path) -> Path:
    """The disk cache of a run on the upload `folder`: beside its data/, never inside it (the dataset is not
    scanned there), and deleted with the upload when the run ends. A uniquely named upload is never
    trained on again, so a cache in the shared cache folder would only have stayed there for good."""
    return upload_root(state, folder) / "cache"


def cache_for(state: AppState, upload: Optional[Path]) -> Path:
    """Where a run's dataset cache goes: its upload's own, or the runs folder's cache/ for a data-root folder
    (reused while the folder's files are unchanged, counted by the runs cap, pruned oldest first)."""
    return upload_cache(state, upload) if upload is not None else state.cache_dir


def keep_caches(state: AppState, config: TrainConfig) -> tuple[str, ...]:
    """The runs folder's caches a Start will read, as `prune_runs` names them; marked as just used, so the
    caches pruned first are the ones unused the longest."""
    kept = []
    for path in training_cache_folders(config):
        if path.parent == state.cache_dir and path.is_dir():
            with contextlib.suppress(OSError):
                os.utime(path)
            kept.append(f"{CACHE}/{path.name}")
    return tuple(kept)


def plot_frames(snapshot: JobSnapshot) -> tuple[Optional[pd.DataFrame], Optional[pd.DataFrame]]:
    """Loss history in long format (step, loss, kind) for the GAN terms and for L1, thinned to at most
    MAX_PLOT_STEPS steps. None before the first step: in gradio 6.31 a LinePlot with a colour column that
    starts from an empty frame never draws its lines, one that starts from None does."""
    if not snapshot.history:
        return None, None
    frame = pd.DataFrame(snapshot.history, columns=["step", "kind", "loss"])
    frame = frame[["step", "loss", "kind"]]
    frame = frame[frame.groupby("kind")["loss"].transform(lambda loss: (loss != 0).any())]  # an option that is off
    steps = frame["step"].unique()
    if len(steps) > MAX_PLOT_STEPS:
        keep = set(steps[:: len(steps) // MAX_PLOT_STEPS + 1]) | {steps[-1]}
        frame = frame[frame["step"].isin(keep)]
    is_gan = frame["kind"].isin(GAN_TERMS)
    return frame[is_gan], frame[~is_gan]


def duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def progress_html(snapshot: JobSnapshot) -> str:
    """The progress bar and its line: before any run "No run yet" (it read "0% · step 0"); after a run, where it
    ended."""
    percent = 100.0 * snapshot.progress
    epoch = f"epoch {snapshot.epoch}" + (f" / {snapshot.epochs}" if snapshot.epochs else "")  # as /train_status
    steps = f"step {snapshot.step}" + (f" / {snapshot.total_steps}" if snapshot.total_steps else "")
    parts = [steps if snapshot.step else "no training step" + (" yet" if snapshot.active else ""),
             epoch if snapshot.step else "",
             f"{snapshot.images_per_second:.1f} img/s" if snapshot.images_per_second else "",
             f"ETA {duration(snapshot.eta_seconds)}" if snapshot.active and snapshot.step else ""]
    text = "No run yet" if snapshot.phase == "idle" else f"{percent:.0f}% · " + " · ".join(p for p in parts if p)
    return (f'<div class="progress-outer"><div class="progress-inner" style="width:{percent:.1f}%"></div></div>'
            f'<div class="progress-text" id="train-progress-text">{text}</div>')


def controls(snapshot: JobSnapshot) -> tuple[bool, bool]:
    """Whether Start and Stop can be clicked: Start while no run is going (it was refused), Stop while one is that a
    Stop can still end (with none it only answered "No training run is going"; once asked, it is stopping)."""
    return not snapshot.active, snapshot.active and snapshot.phase != "stopping"


def status_html(snapshot: JobSnapshot) -> str:
    """The shared status line. Messages can hold file names from an uploaded zip, so everything but our
    own tags is escaped: HTML, not Markdown, because Markdown would also turn [text](url) into a link."""
    losses = " · ".join(f"{k} {v:.3f}" for k, v in snapshot.losses.items() if v != 0) if snapshot.active else ""
    text = f"<b>{html.escape(snapshot.phase)}</b> — {html.escape(snapshot.message)}"
    return f"<div>{text}</div>" + (f"<div>{html.escape(losses)}</div>" if losses else "")


# ------------------------------------------------------------------------------ handlers
# The tab's event handlers, readable and testable without building the UI. Those that read the app take its
# `state` first; `build` fills it in with `bound`, which keeps each handler's name: Gradio names an event's API
# endpoint after it (and tests find handlers by it).
def bound(handler: Callable, state: AppState) -> Callable:
    """`handler` with `state` filled in, as Gradio calls it: the rest of its signature (the API's parameters), its
    name (the api_name of an event that gives none) and its docstring (the API page's description)."""
    call = functools.partial(handler, state)
    call.__name__, call.__doc__ = handler.__name__, handler.__doc__
    return call


def start_choices(state: AppState, task: str) -> list[str]:
    return [SCRATCH] + state.models.names(task)  # an unpaired run's: the CycleGAN models


def on_preset(name: str):
    values = PRESETS[name]
    return values["epochs"], values["epochs_decay"], values["batch_size"], values["ngf"]


def on_task(state: AppState, name: str):
    """Fine-tune choices of the task, its input side, only the fields that apply to it, and what its dataset
    folder holds (the folder's placeholder)."""
    side, l1, augment = field_visibility(name)
    return (gr.Dropdown(choices=start_choices(state, name), value=SCRATCH),
            gr.update(value=form_direction(name), visible=side), gr.update(visible=l1),
            gr.update(visible=augment), gr.update(placeholder=FOLDER_PLACEHOLDERS.get(name, "")))


FORM_FIELDS = 12  # the fields restore_form fills: build's `form`, in its order


def restore_form(state: AppState):
    """On page load, the form and dataset line of the run that is going: a reload or a second browser showed
    the defaults, as if they were training. With no run going the form stays as it is. Once per page load,
    never on a tick, so it never overwrites what the user types."""
    settings = state.job.active_settings()
    if settings is None:
        return *[gr.skip()] * FORM_FIELDS, dataset_summary(state, "facades")
    side, l1, augment = field_visibility(settings.task)
    return (settings.task, gr.update(value=settings.data_folder, placeholder=FOLDER_PLACEHOLDERS[settings.task]),
            gr.update(value=settings.direction, visible=side),
            settings.preset, settings.epochs, settings.epochs_decay, settings.batch_size,
            gr.update(value=settings.lambda_l1, visible=l1), settings.lr, settings.ngf,
            gr.Dropdown(choices=start_choices(state, settings.task), value=settings.start_from),
            gr.update(value=settings.diff_augment, visible=augment), running_dataset_summary(state, settings))


def checked_form(task: str, preset: str, epochs: float, epochs_decay: float, batch_size: float, lambda_l1: float,
                 lr: float, ngf: float, diff_augment: bool) -> dict:
    """The Start form's choices checked before anything is unpacked: its numbers as TrainConfig fields (as
    `checked_numbers` gives them), or a one-line Pix2PixError naming what is wrong."""
    if preset not in PRESETS:
        raise Pix2PixError(f"unknown preset {quoted(preset)}; choose one of {', '.join(PRESETS)}")
    if task not in [value for _, value in TASKS]:
        raise Pix2PixError(f"unknown task {quoted(task)}; choose one of {', '.join(v for _, v in TASKS)}")
    numbers = checked_numbers(epochs, epochs_decay, batch_size, lambda_l1, lr, ngf)
    if not isinstance(diff_augment, bool):
        raise Pix2PixError(f"diff_augment must be true or false, got {quoted(diff_augment)}")
    if diff_augment and task == "unpaired":
        raise Pix2PixError("DiffAugment is for pix2pix runs; an unpaired (CycleGAN) run trains without it")
    return numbers


def training_data(state: AppState, task: str, data_folder: str, upload: Optional[Path]) -> tuple[Path, str]:
    """The dataset a run trains on: the unpacked upload, else the folder typed (inside the data root), else the
    task's default; and the folder as a page opened during the run shows it: relative, never a server path."""
    if upload is not None:
        return upload, ""
    if data_folder and str(data_folder).strip():
        data = state.data_folder(data_folder)
        return data, data.relative_to(state.data_root).as_posix()
    return default_data(state, task), ""


def run_config(state: AppState, task: str, preset: str, numbers: dict, direction: str, diff_augment: bool,
               data: Path, upload: Optional[Path], base: Optional[TrainConfig]) -> tuple[TrainConfig, TrainConfig]:
    """The TrainConfig of a run, from the form's checked values: the task's settings at the preset's size, the
    form's numbers and direction, a fine-tune's model size (`base`: the config of the model it starts from);
    refused with a Pix2PixError when it does not fit this machine. Also the config before the fine-tune
    adjustments, whose size `model_size_note` compares."""
    augments = {"diff_augment": REMEDY_AUGMENTS} if diff_augment else {}  # the box adds it; a preset may have it
    config = TrainConfig(task=task, data=str(data), cache_dir=str(cache_for(state, upload)),
                         **{**task_settings(task, preset), **augments})
    preset_config = with_settings(config, numbers, direction, state.train_memory_bytes)
    config = fine_tuned(preset_config, base) if base is not None else preset_config
    check_run_size(config, state.train_memory_bytes, state.runs_max_bytes)
    return config, preset_config


@user_errors
def train_start(state: AppState, task: str, data_folder: str, direction: str, preset: str, epochs: float,
                epochs_decay: float, batch_size: float, lambda_l1: float, lr: float, ngf: float, start_from: str,
                data_zip: Optional[str] = None, diff_augment: bool = False) -> str:
    """Start a training run in the background; refused while another run is going. (The parameter names are
    the API's: /train_start's clients send them as keywords.)"""
    state.job.refuse_if_active()  # before unpacking a zip for nothing
    numbers = checked_form(task, preset, epochs, epochs_decay, batch_size, lambda_l1, lr, ngf, diff_augment)
    init = base = None
    if start_from and start_from != SCRATCH:
        state.models.refresh()  # models trained since the page (or the app) started count too
        init, base = state.models.start_point(start_from, task)
    # held while the zip unpacks and the settings are checked: a second Start is refused, Stop cancels it
    with state.job.preparing("unpacking the uploaded dataset..." if data_zip else "checking the settings..."):
        upload = extract_zip(state, data_zip) if data_zip else None
        try:
            data, folder_text = training_data(state, task, data_folder, upload)
            config, preset_config = run_config(state, task, preset, numbers, direction, diff_augment, data, upload,
                                               base)
            # make room before the run writes its checkpoints, never at the cost of the model it starts from
            # or of the dataset cache it reads
            state.prune_runs(keep=((start_from,) if init is not None else ()) + keep_caches(state, config))
            asked = FormSettings.of(config, preset, folder_text, upload is not None,
                                    start_from if init is not None else SCRATCH)
            # said before the run starts, as the command line does: a one-generator CycleGAN file seeds one way
            plan = (f" Fine-tuning: {fine_tune_plan(init, config.model, f'`{start_from}`')}"
                    f"{model_size_note(config, preset_config)}." if init else "")
            reply = state.job.start(config, init_generator=init, remove_after=upload and upload_root(state, upload),
                                    settings=asked) + plan
            if data == EXAMPLES / "facades_pairs":
                reply += (f" It trains on the 6 bundled example pairs only; get the full facades data with "
                          f"`{get_data_command(state, 'facades')}`.")
            return reply
        except BaseException:
            if upload is not None:
                remove_quietly(upload_root(state, upload))
            raise


def refresh_start_from(state: AppState, task_name: str, current: str):
    """The fine-tune choices of the task when the tab is shown: models trained or added since the page loaded
    count, an unpaired run's CycleGAN models too; the choice made stays while its model is there."""
    state.models.refresh()
    choices = start_choices(state, task_name)
    return gr.Dropdown(choices=choices, value=current if current in choices else SCRATCH)


def train_stop(state: AppState) -> str:
    """Stop the running job after its current step (it keeps a checkpoint); harmless when idle."""
    return state.job.stop()


def train_status(state: AppState) -> dict:
    """The training job's phase, step, progress, speed, ETA, latest losses and message."""
    return state.job.snapshot().as_dict()


def tick(state: AppState, seen_version: int, shown_note: str):
    """Redraw only when the job changed since this page last drew it; the reply to Start or Stop ("Started
    ...", "Stopping ...") goes once the run has ended (it stayed beside the "stopped" status). Refusals stay."""
    snapshot = state.job.snapshot()
    if snapshot.version == seen_version:
        return *[gr.skip()] * 5, seen_version, *[gr.skip()] * 3
    stale = not snapshot.active and str(shown_note or "").startswith(("Started ", "Stopping "))
    return *redraw(state), "" if stale else gr.skip()


def redraw(state: AppState):
    """Everything the Train tab shows, from the shared job: a page opened (or a tab shown) after a run
    ended sees that run, whatever its timer missed while the tab was hidden. A run without a sample yet (just
    started, or failed before its first) clears the picture: the last run's stayed beside the new run's status.
    Start and Stop are clickable as `controls` says."""
    snapshot = state.job.snapshot()
    start, stop = controls(snapshot)
    return (status_html(snapshot), progress_html(snapshot), *plot_frames(snapshot),
            sample_file(state, snapshot.sample) if snapshot.sample is not None else None, snapshot.version,
            gr.update(interactive=start), gr.update(interactive=stop))


def sample_file(state: AppState, sample: Image.Image) -> str:
    """The latest sample as a file, written once per sample: returned as a PIL image it was encoded again at
    every redraw (each loss logged, each page) and Gradio rewrote its cache file in place while browsers were
    still fetching the same picture (h11 "Too little data for declared Content-Length"). With the disk nearly
    full the sample shown stays (the status and plots go on)."""
    try:
        return state.outputs.save_latest(sample, "sample")
    except Pix2PixError:
        return gr.skip()


def build(state: AppState) -> dict:
    """The Train tab: its layout, then its events (see `wire` for what it returns)."""
    return wire(state, layout(state))


@dataclass
class TrainPage:
    """The tab's components that its events read or write (and the Translate section's handles)."""
    task: Picker
    preset: Choice
    data_folder: gr.Textbox
    data_zip: FileInput
    direction: Choice
    start_from: Picker
    epochs: gr.Number
    epochs_decay: gr.Number
    batch_size: gr.Number
    lambda_l1: gr.Number
    lr: gr.Number
    ngf: gr.Number
    diff_augment: gr.Checkbox
    start_button: gr.Button
    stop_button: gr.Button
    dataset: gr.HTML
    note: gr.Markdown
    status: gr.HTML
    progress: gr.HTML
    gan_plot: gr.LinePlot
    l1_plot: gr.LinePlot
    sample: gr.Image
    translate: dict
    timer: gr.Timer
    seen: gr.State


def layout(state: AppState) -> TrainPage:
    """The tab's components, in page order (the Translate section below the form and the live view)."""
    quick = PRESETS[DEFAULT_PRESET]

    gr.Markdown("Train pix2pix on a dataset in the background. **Quick demo** is a small 128 px model that shows "
                "samples within a minute on a laptop CPU; **Standard** uses the paper's settings (hours). One run "
                "at a time; reloading the page shows the run that is going. When a run ends or is stopped, its "
                "model appears in the Facades / Colorize model pickers; a custom or unpaired (CycleGAN) model, "
                "trained on your own pairs or on a folder or zip holding trainA/ and trainB/, in the Translate "
                "section below.", elem_classes="help")
    with gr.Row():
        with gr.Column(scale=1, min_width=360):
            with gr.Row():
                task = Picker(TASKS, value="facades", label="Task", elem_id="train-task", scale=3,
                              min_width=NAMES_MIN_WIDTH)
                preset = Choice(list(PRESETS), value=DEFAULT_PRESET, label="Preset", elem_id="train-preset", scale=2)
            data_folder = gr.Textbox("", label=f"Dataset folder, relative to the data root ({state.data_root.name}/)",
                                     placeholder=FOLDER_PLACEHOLDERS["facades"], elem_id="train-data")
            data_zip = FileInput(label="…or upload a dataset zip", file_types=[".zip"], type="filepath", height=150)
            with gr.Row():
                direction = Choice(["AtoB", "BtoA"], value="BtoA", label="Input side (custom data)",
                                   elem_id="train-direction", visible=field_visibility("facades")[0])
                # allow_custom_value: the API accepts models trained after startup; the handler checks names
                start_from = Picker(start_choices(state, "facades"), value=SCRATCH, label="Start from (fine-tune)",
                                 elem_id="train-start-from", allow_custom_value=True)
            # No precision/minimum/maximum here: Gradio would convert or check the values itself, and NaN,
            # 1e300 or a string would fail inside Gradio with an unclear error; checked_numbers says why.
            with gr.Row():
                epochs = gr.Number(quick["epochs"], label="Epochs", min_width=80, elem_id="train-epochs")
                epochs_decay = gr.Number(quick["epochs_decay"], label="Decay epochs", min_width=80)
                batch_size = gr.Number(quick["batch_size"], label="Batch size", min_width=80)
            with gr.Row():
                lambda_l1 = gr.Number(100.0, label="λ L1", min_width=80, elem_id="train-lambda-l1")
                lr = gr.Number(2e-4, label="Learning rate", min_width=80)
                ngf = gr.Number(quick["ngf"], label="ngf (G width)", min_width=80)
            # the remedy a collapsed run's message names (pix2pix only: a collapsed CycleGAN's names --d-lr-factor)
            diff_augment = gr.Checkbox(False, elem_id="train-diff-augment",
                                       label="DiffAugment on D's inputs (translation, cutout), against a "
                                             "discriminator that wins and collapses the GAN (Quick demo: always on)")
            with gr.Row():
                can_start, can_stop = controls(state.job.snapshot())  # then as each redraw and tick says
                start_button = gr.Button("Start training", variant="primary", elem_id="train-start",
                                         interactive=can_start)
                stop_button = gr.Button("Stop", variant="stop", elem_id="train-stop", interactive=can_stop)
            # computed again on each page load (restore_form): data fetched after startup is seen
            dataset = gr.HTML(dataset_summary(state, "facades"), elem_id="train-dataset")
            note = gr.Markdown("", elem_id="train-note")  # the reply to Start / Stop; the status is live
        with gr.Column(scale=2, min_width=480):
            status = gr.HTML(status_html(state.job.snapshot()), elem_id="train-status")
            progress = gr.HTML(progress_html(state.job.snapshot()), elem_id="train-progress")
            gan_frame, l1_frame = plot_frames(state.job.snapshot())
            # a line, not the plots' labels: before a run they were bare boxes, and a block label cut their legend
            gr.Markdown("Below: the run's GAN losses and L1 losses (how far its outputs are from the targets), "
                        "drawn as it trains.",
                        elem_classes="help", elem_id="train-plots-note")
            with gr.Row():
                gan_plot = gr.LinePlot(gan_frame, x="step", y="loss", color="kind", title="GAN losses",
                                       color_map={k: LOSS_COLOURS[k] for k in GAN_TERMS},
                                       height=240, elem_id="train-plot", min_width=240)
                l1_plot = gr.LinePlot(l1_frame, x="step", y="loss", color="kind", title="L1 losses (× λ)",
                                      color_map={k: LOSS_COLOURS[k] for k in L1_TERMS},
                                      height=240, elem_id="train-plot-l1", min_width=240)
            # the panels are said below the picture: as its label, they wrapped under its buttons on a phone
            sample = gr.Image(label="Latest sample", type="filepath", format="png", interactive=False, height=220,
                              elem_id="train-sample", buttons=["download", "fullscreen"])
            gr.Markdown("Left to right: the input, the model's output, the real target. CycleGAN: an A picture, "
                        "made B, made A again; then a B picture, made A, made B again.", elem_classes="help")
    translate = translate_section.build(state)
    timer = gr.Timer(1.0)
    seen = gr.State(-1)
    return TrainPage(task=task, preset=preset, data_folder=data_folder, data_zip=data_zip, direction=direction,
                     start_from=start_from, epochs=epochs, epochs_decay=epochs_decay, batch_size=batch_size,
                     lambda_l1=lambda_l1, lr=lr, ngf=ngf, diff_augment=diff_augment, start_button=start_button,
                     stop_button=stop_button, dataset=dataset, note=note, status=status, progress=progress,
                     gan_plot=gan_plot, l1_plot=l1_plot, sample=sample, translate=translate, timer=timer,
                     seen=seen)


def wire(state: AppState, ui: TrainPage) -> dict:
    """The tab's events, on the components of `layout`; returns the handlers that app.py wires to the page load
    and to the tab's select, with their inputs and outputs, and the Translate section's."""
    form = [ui.task, ui.data_folder, ui.direction, ui.preset, ui.epochs, ui.epochs_decay, ui.batch_size, ui.lambda_l1,
            ui.lr, ui.ngf, ui.start_from, ui.diff_augment]

    private = dict(api_visibility="private")
    # .input, not .change: the user's choices only. A restored task or preset must not reset the restored fields.
    ui.preset.input(on_preset, ui.preset, [ui.epochs, ui.epochs_decay, ui.batch_size, ui.ngf], **private)
    ui.task.input(bound(on_task, state), ui.task,
                  [ui.start_from, ui.direction, ui.lambda_l1, ui.diff_augment, ui.data_folder], **private)
    # The restore writes the dataset line itself, and a restored task must not replace an upload run's line. The
    # folder keeps .change: gradio 6.31's Textbox fired .input on key strokes but not on Playwright's fill(). A
    # restored folder gives the restore's own line again (an upload run's folder is "": no change, no event).
    # Each keystroke in the folder box lists a folder: two at a time for all viewers, however many a client sends
    for event in (ui.task.input, ui.data_folder.change, ui.data_zip.change, ui.preset.input):
        event(lambda t, f, z, p: dataset_summary(state, t, f, bool(z), p),
              [ui.task, ui.data_folder, ui.data_zip, ui.preset], ui.dataset, show_progress="hidden",
              concurrency_limit=DATASET_LINES_AT_ONCE, concurrency_id="dataset_line", trigger_mode="always_last",
              **private)
    # the zip and diff_augment last: their defaults make them optional for API clients
    settings = [ui.task, ui.data_folder, ui.direction, ui.preset, ui.epochs, ui.epochs_decay, ui.batch_size,
                ui.lambda_l1, ui.lr, ui.ngf, ui.start_from, ui.data_zip, ui.diff_augment]
    ui.start_button.click(bound(train_start, state), settings, ui.note, api_name="train_start", concurrency_limit=1,
                          concurrency_id="train_control")
    # Stop never waits behind anything (not even a Start that is unpacking a zip): it only sets a flag
    ui.stop_button.click(bound(train_stop, state), None, ui.note, api_name="train_stop", concurrency_limit=None)
    # Each open page ticks every second. Not through the queue: Gradio counts every event waiting there for a
    # worker slot against its size (demo/app.py's MAX_QUEUED), and with all slots busy 200 open pages' ticks filled
    # it, refusing users' clicks as "Queue is full". A tick only reads the job (or writes a new sample once), so it
    # needs no lane; without the queue it waits for one of Gradio's threads instead
    ui.timer.tick(bound(tick, state), [ui.seen, ui.note],
                  [ui.status, ui.progress, ui.gan_plot, ui.l1_plot, ui.sample, ui.seen, ui.start_button,
                   ui.stop_button, ui.note],
                  show_progress="hidden", concurrency_limit=None, queue=False, **private)
    with gr.Row(visible=False):  # /train_status's own components: the page never shows them
        status_json = gr.JSON(label="status")
        status_button = gr.Button()
    status_button.click(bound(train_status, state), None, status_json, api_name="train_status",
                        concurrency_limit=None)
    shown = [ui.status, ui.progress, ui.gan_plot, ui.l1_plot, ui.sample, ui.seen, ui.start_button, ui.stop_button]
    return {"start_from_refresh": (bound(refresh_start_from, state), [ui.task, ui.start_from], ui.start_from),
            "redraw": (bound(redraw, state), None, shown), "translate": ui.translate,
            "restore": (bound(restore_form, state), None, [*form, ui.dataset])}
