"""The Train tab's dataset line: which dataset Start will train on, how many of its images the preset uses,
and when the data is missing or laid out for another task, what to do (the command that fetches a public
dataset, the task that fits). HTML with every dynamic part escaped: a typed folder name must never become
markup.
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Optional

from pix2pix_core.config import TrainConfig
from pix2pix_core.download import SOURCES, Source, describe_size
from pix2pix_core.errors import Pix2PixError

from .state import EXAMPLES, MAX_FOLDER_TEXT, AppState
from .train_settings import DEFAULT_PRESET, MAX_IMAGES, PRESETS, TASK_LABELS, FormSettings


def default_data(state: AppState, task: str) -> Path:
    """The dataset used when no folder or zip is given."""
    if task == "facades":
        folder = state.data_root / "facades"
        return folder if folder.is_dir() else EXAMPLES / "facades_pairs"
    if task == "colorize" and (state.data_root / "food").is_dir():
        return state.data_root / "food"
    holding = " holding trainA/ and trainB/" if task == "unpaired" else ""
    # the task as the command line names it, which /train_start takes: the page's cleaner names it as the form does
    raise Pix2PixError(f"give a dataset folder (inside the data root) or upload a zip{holding} for the {task} task")


# What an empty dataset folder means, or what the folder must hold, per task: one text for every task said
# "empty: <data root>/facades or /food", which the custom and unpaired tasks refuse
FOLDER_PLACEHOLDERS = {
    "facades": "empty: <data root>/facades (the 6 bundled example pairs when it is missing)",
    "colorize": "empty: <data root>/food",
    "aligned": "a folder of A|B side-by-side images (in train/, or in the folder itself)",
    "paired": "a folder holding A/ and B/ (in train/, or in the folder itself)",
    "unpaired": "a folder holding trainA/ and trainB/",
}


def get_data_command(state: AppState, name: str) -> str:
    """The exact command that puts dataset `name` where the app looks for it."""
    root = state.data_root
    try:
        shown = f"{root.relative_to(Path.cwd().resolve())}/" if root != Path.cwd().resolve() else "."
    except ValueError:  # the page must not show the server's own paths
        shown = "<the app's --data-root>"
    return f"pix2pix data {name} --out {shown}"


def _code(text: str) -> str:
    return f"<code>{html.escape(text)}</code>"


def dataset_summary(state: AppState, task: str, data_folder: str = "", has_zip: bool = False,
                    preset: str = DEFAULT_PRESET) -> str:
    """Which dataset Start will train on and how many training images it has, and how many of them `preset`
    trains on (HTML); when the data is missing, the command that gets it; when the task does not fit the
    folder's layout, the task that does. HTML with every dynamic part escaped, not Markdown: a typed folder
    name such as ![x](https://...) would be a picture fetched from outside in Markdown, however its HTML is
    escaped."""
    from pix2pix_core.resources import collection_counts

    label = "<b>Dataset:</b>"
    if task not in TASK_LABELS:  # an API client's empty task (the picker refuses other values)
        return f"{label} choose a task."
    if has_zip:
        cap = preset_cap(preset)
        of = "of each collection" if task == "unpaired" else "of them"
        at_most = f"; the {preset} preset trains on at most {cap} {of}" if cap else ""
        return f"{label} the uploaded zip (its images are counted when Start unpacks it{at_most})."
    typed = str(data_folder).strip() if data_folder else ""
    try:
        folder = state.data_folder(typed) if typed else default_data(state, task)
    except Pix2PixError as exc:
        return f"{label} {html.escape(state.clean(exc))}{missing_data_advice(state, task, typed)}"
    if folder == EXAMPLES / "facades_pairs":
        name = "the 6 bundled example pairs"
    else:
        name = f"{_code(folder.relative_to(state.data_root).as_posix() or '.')} in the data root"
    refusal = ""
    try:  # counted up to one above the app's cap: a keystroke never lists a huge folder whole
        counts = collection_counts(TrainConfig(task=task, data=str(folder)), at_most=MAX_IMAGES + 1)
    except Pix2PixError as exc:  # a layout the task cannot read (no A/ and B/, no trainA/ and trainB/)
        counts, refusal = [0], html.escape(state.clean(exc))
    fits_another = "" if all(counts) else other_layout(folder, task, name)
    if fits_another or refusal:
        return f"{label} {fits_another or refusal}"
    if task == "unpaired":  # both collections (an epoch walks the larger)
        a, b = counts
        empty = " and ".join(f"{side}/" for side, n in (("trainA", a), ("trainB", b)) if n == 0)
        line = (f"{label} {name}, {counted(a)} pictures in trainA/ and {counted(b)} in trainB/ (unpaired)"
                f"{part_of(preset, a, b)}.")
        if empty:  # Start refuses it
            line += f" An unpaired run needs pictures in both: put some in {empty}."
    else:
        count = counts[0]
        line = (f"{label} {name}, {counted(count)} training image{'s' if count != 1 else ''}"
                f"{part_of(preset, count)}.")
        if count == 0:
            from pix2pix_core.dataset_layout import where_images_are

            why = no_pairs_in(folder) if task == "paired" else no_images_in(folder)
            hint = state.clean(where_images_are(folder, task))  # the library's words: the page's task names
            line += html.escape(f" {hint}" if hint else why)
    if folder == EXAMPLES / "facades_pairs":
        line += (" Too few to learn facades: the samples stay a blur. The full facades data (400 training pairs) "
                 f"is not in the data root; get it with {fetch_command(state, 'facades')} and reload this page.")
    return line


def no_images_in(folder: Path) -> str:
    """Why a folder without a layout hint has no training images: the file types Start reads, and where."""
    from pix2pix_core.images import IMAGE_EXTENSIONS

    where = "its train/" if (folder / "train").is_dir() else "it"
    kinds = ", ".join(IMAGE_EXTENSIONS[:-1]) + f" or {IMAGE_EXTENSIONS[-1]}"
    return f" (no {kinds} files in {where})"


def no_pairs_in(folder: Path) -> str:
    """Why a folder with the paired layout has no training pairs: a side holds no images, or no file name is on
    both sides (no_images_in would say there are no images, which A/ and B/ may hold)."""
    from pix2pix_core.dataset_layout import split_folder
    from pix2pix_core.images import has_images

    split = split_folder(folder, "train")
    empty = [f"{side}/" for side in "AB" if not has_images(split / side)]
    if empty:
        return f" (no image files in {' and '.join(empty)})"
    return " (no file name in A/ is in B/: pairs are matched by name without extension)"


def preset_cap(preset: str) -> Optional[int]:
    """The training images per collection `preset` takes at most (None: all)."""
    return PRESETS.get(preset, {}).get("max_images")


def counted(count: int) -> str:
    """A count of training images as the line says it: above the app's cap, only that it is above."""
    return f"more than {MAX_IMAGES:,}" if count > MAX_IMAGES else f"{count:,}"


def part_of(preset: str, *counts: int) -> str:
    """What the line adds when `preset` trains on fewer images than a collection holds (Quick demo: 100 of each
    collection, spread evenly over the file-name order), or when Start will refuse a collection above the app's
    cap; "" otherwise."""
    cap = preset_cap(preset)
    if not cap and max(counts) > MAX_IMAGES:
        return (f"; Start refuses more than {MAX_IMAGES:,} with the {preset} preset (the {DEFAULT_PRESET} preset "
                f"trains on {preset_cap(DEFAULT_PRESET)} of them; the command line on all)")
    if not cap or max(counts) <= cap:
        return ""
    return (f"; the {preset} preset trains on {cap}{' of each' if len(counts) > 1 else ''}, spread evenly over "
            "the file-name order")


def fetch_command(state: AppState, name: str) -> str:
    """The command that fetches public dataset `name` into the data root, and its download size (HTML); the food
    photos with the share the app's colorizer trained on."""
    source = SOURCES[name]
    command = get_data_command(state, name) + (" --limit 5000" if source.task == "colorize" else "")
    size = f"a {describe_size(source.size)}" if source.size else f"about {describe_size(source.approx_bytes)}"
    return f"{_code(command)} ({size} download)"


def missing_data_advice(state: AppState, task: str, typed: str) -> str:
    """Where data that is not there comes from (HTML): for a typed folder named after a public dataset, the
    command that puts it there and the task it is for; with no folder typed, the public datasets of `task`."""
    if typed:
        source = public_dataset(state, typed)
        if source is None:
            return ""
        if not source.trains:  # ae_photos: test photos to try a model on
            use = "its test photos are to try a CycleGAN model on in the Translate section, not to train on"
        else:
            side = f" (input side {source.direction})" if source.task == "aligned" else ""
            use = f"then train on it with the task {task_name(source.task)}{side}"
        return (f" — {html.escape(source.name)} is a public dataset: get it with "
                f"{fetch_command(state, source.name)}, {use}.")
    if task == "colorize":
        return f" — get Food-101 photos with {fetch_command(state, 'food')}"
    names = [name for name, source in SOURCES.items() if source.task == task and source.trains]
    if not names:
        return ""
    return (f" — public datasets for it: {html.escape(', '.join(names))}; get one with "
            f"{_code(get_data_command(state, 'NAME'))} (sizes: {_code('pix2pix data --list')}), then type its name.")


def public_dataset(state: AppState, typed: str) -> Optional[Source]:
    """The public dataset a typed folder names, when the folder is where `pix2pix data NAME` puts it: NAME right
    in the data root (typed as NAME, ./NAME/ or its full path)."""
    if len(typed) > MAX_FOLDER_TEXT:
        return None
    where = Path(os.path.normpath(state.data_root / typed))  # never resolved: the folder is not there
    return SOURCES.get(where.name) if where.parent == state.data_root else None


def fitting_tasks(folder: Path) -> tuple[str, ...]:
    """The form's tasks whose layout `folder` has, from folder names and one listing: trainA/ and trainB/
    (unpaired), A/ and B/ in train/ or in the folder itself (paired), images there (the tasks that read one
    image per example: which of them needs a look at the pictures)."""
    from pix2pix_core.dataset_layout import holds_unpaired
    from pix2pix_core.images import has_images

    if holds_unpaired(folder):
        return ("unpaired",)
    split = folder / "train" if (folder / "train").is_dir() else folder
    if (split / "A").is_dir() and (split / "B").is_dir():
        return ("paired",)
    return ("facades", "colorize", "aligned") if has_images(split) else ()


def task_name(task: str) -> str:
    """A task as the form names it, for the dataset line (HTML)."""
    return f"<i>{html.escape(TASK_LABELS[task])}</i>"


def other_layout(folder: Path, task: str, name: str) -> str:
    """When `task` finds nothing in `folder` but another task would: which one, and what `task` reads, in the
    form's words (HTML, `name` already escaped); "" otherwise."""
    fits = fitting_tasks(folder)
    if not fits or task in fits:
        return ""
    inside = " in train/" if (folder / "train").is_dir() else ""
    layouts = {"unpaired": "trainA/ and trainB/", "paired": f"A/ and B/ folders{inside}"}
    tasks = [task_name(fit) for fit in fits]
    named = " or ".join([", ".join(tasks[:-1]), tasks[-1]] if len(tasks) > 1 else tasks)
    reads = layouts.get(task, "images (in train/, or in the folder itself)")
    return (f"{name} holds {layouts.get(fits[0], f'images{inside}')}: the layout of {named}; "
            f"{task_name(task)} reads {reads}.")


def running_dataset_summary(state: AppState, settings: FormSettings) -> str:
    """The dataset line of a page that shows the form of the run going: an uploaded zip cannot be put back in
    the file field, so the line says where that run's data came from."""
    if settings.uploaded:
        return "<b>Dataset:</b> a zip uploaded for the run that is going (the zip field is for the next Start)."
    return dataset_summary(state, settings.task, settings.data_folder, preset=settings.preset)
