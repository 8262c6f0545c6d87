"""Evaluate a checkpoint on a split: an HTML report to look at and metrics.json to compare runs.

Every image goes through `Translator.translate`, the exact path users take (label maps cleaned
by `palette.clean_label_ids`, the Translator's batch-norm mode and dropout as in the official test script, the L of the photo joined to
the predicted ab for colorization), so the numbers describe what the app and `translate` produce.
The split is read without jitter at the network's size, as in training (resize, or centre crop for
photos), so outputs and ground truth line up pixel for pixel; `size` reads it at another size instead,
so models trained at different sizes (a 128 px and a 256 px colorizer, say) are scored on the same
pictures: colour statistics and detail depend on the resolution they are measured at.

Metrics are computed on RGB in [0, 1] with scikit-image (PSNR, SSIM) and averaged over images:
- all tasks: l1 (mean absolute error), psnr (dB), ssim;
- colorize: colourfulness of outputs and targets (Hasler & Suesstrunk 2003; "sepia" outputs score far
  below their targets), and gray_* = the same metrics for the gray input itself, the baseline any
  colorizer must beat; unless realism=False, colour_two_sample_acc (a classifier telling real from
  colorized photos on Lab colour statistics, pix2pix_core/colour_realism.py; 0.5 = indistinguishable)
  with its real-vs-real floor colour_two_sample_acc_floor (train vs val photos), and
  colour_detail_ratio (mean a/b gradient of the outputs over the real photos': above 1 = speckle);
- facades with a segmenter: the paper's FCN-score (sec. 4.2): a facade segmenter runs on the generated
  photos and is scored against the input label maps (fcn_pixel_acc, fcn_class_acc, fcn_miou), and on
  the real photos (the *_real keys: the ceiling a perfect generator would reach);
- facades with a segmenter, unless realism=False: how distinguishable the generated photos are from the
  real ones in the segmenter's features (pix2pix_core/realism.py): kid_x1000 (KID x 1000, 0 = same
  distribution) and two_sample_acc (cross-validated real-vs-generated classifier accuracy, 0.5 =
  indistinguishable; two_sample_acc_seeds: each of the two classifier seeds), and the same for real
  photos of the train split (a seeded sample of as many photos) vs the real photos: the *_floor keys,
  what even a perfect generator would get with this few images.
"""

from __future__ import annotations

import dataclasses
import html
import json
import math
import warnings
from pathlib import Path
from typing import Literal, Optional, Union

import numpy as np
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from tqdm import tqdm

from .atomic_files import output_problem, replaced_atomically
from .bundled import bundled_checkpoints
from .data import load_items, refuse_if_none_usable, warn_skipped
from .dataset_layout import split_folder, unpaired_folders
from .errors import ImageError, Pix2PixError
from .images import load_folder_images, open_image
from .inference import Translator, grayscale
from .limits import bounded_int
from .palette import clean_label_ids, ids_to_image
from .report_stage import ReportStage, StagedRow, cannot_write, staged_report
from .segment import N_CLASSES, Segmenter, confusion_matrix, scores_from_confusion

PSNR_CAP = 100.0  # dB; identical images have infinite PSNR, which JSON cannot hold
MIN_SIZE, MAX_SIZE = 16, 2048  # bounds of `size`: the decoded split's memory grows with its square
MIN_SCORED_SIDE = 7  # scikit-image's SSIM window: a smaller picture cannot be scored
REPORT_SIDE = 512  # longest side of the report's copy of a picture scored at its own size (the page shows 256 px)
SegmenterChoice = Union[str, Path, Segmenter, None, Literal[False]]


# ---------------------------------------------------------------------------------------------- metrics
def as_unit(image: Image.Image) -> np.ndarray:
    """PIL RGB -> (H, W, 3) float64 in [0, 1]."""
    return np.asarray(image.convert("RGB"), dtype=np.float64) / 255.0


def image_scores(output: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """l1, psnr and ssim of one RGB image in [0, 1] against its ground truth."""
    with np.errstate(divide="ignore"):  # identical images: log10(1 / 0), capped below
        psnr = peak_signal_noise_ratio(truth, output, data_range=1.0)
    return {
        "l1": float(np.abs(output - truth).mean()),
        "psnr": float(min(psnr, PSNR_CAP)),
        "ssim": float(structural_similarity(truth, output, channel_axis=-1, data_range=1.0)),
    }


def colorfulness(rgb: np.ndarray) -> float:
    """Hasler & Suesstrunk (2003) colourfulness of an RGB image in [0, 1], on their 0-255 scale.

    sigma + 0.3 * mu of the opponent channels rg = R - G and yb = (R + G) / 2 - B; about 0 for gray,
    ~33 "moderately colourful", above ~59 "highly colourful".
    """
    red, green, blue = np.moveaxis(rgb * 255.0, -1, 0)
    rg, yb = red - green, 0.5 * (red + green) - blue
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


# ---------------------------------------------------------------------------------------------- report
def save_metrics(out: Path, metrics: dict) -> Path:
    """metrics.json, atomically, with any non-finite number (a ratio of nothing to nothing) as null: strict
    JSON, and a crash here must not leave a new index.html beside an old metrics.json."""
    def finite(value):
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {k: finite(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [finite(v) for v in value]
        return value

    path = out / "metrics.json"
    with replaced_atomically(path) as handle:
        handle.write((json.dumps(finite(metrics), indent=2, allow_nan=False) + "\n").encode())
    return path


def foreign_report_files(out: Path) -> list[Path]:
    """The index.html and metrics.json in `out` that a report would replace but no report wrote (a website's
    page, another tool's metrics: `--out .` in such a folder), unreadable ones included; [] for a new folder or
    an earlier report's, which a report refreshes."""
    def ours(path: Path) -> bool:
        try:
            text = path.read_text(encoding="utf-8")
            if path.suffix == ".html":
                return '<table class="metrics">' in text
            metrics = json.loads(text)
            return isinstance(metrics, dict) and {"checkpoint", "task"} <= set(metrics)
        except (OSError, UnicodeDecodeError, ValueError):
            return False

    try:
        return [p for p in (out / "index.html", out / "metrics.json") if p.exists() and not ours(p)]
    except OSError:  # cannot look (no permission): the write then says why
        return []


def write_report_folder(stage: ReportStage, title: str, metrics: dict, rows: list[StagedRow]) -> None:
    """metrics.json and the report, after the whole evaluation: a folder that cannot take them (a full disk, no
    permission, a file in the way) is one line, not a traceback that ends a long run."""
    try:
        save_metrics(stage.out, metrics)
        write_page(stage, title, metrics, rows)
    except OSError as exc:
        raise cannot_write(stage.out, exc) from None


def refuse_report_folder(out: str | Path) -> None:
    """`out` checked before the work: a file given for the report folder failed once every image was translated,
    saying "File exists; free some space or give another --out"; a folder holding an index.html or metrics.json
    that no report wrote (a website's page: `--out .` in it) had them replaced."""
    problem = output_problem(out, folder=True)
    if problem:
        raise Pix2PixError(f"out: {problem}")
    foreign = foreign_report_files(Path(out))
    if foreign:
        raise Pix2PixError(f"out: the report would replace {' and '.join(str(p) for p in foreign)}, which no "
                           "earlier report wrote: give another folder (a new one)")


def write_page(stage: ReportStage, title: str, metrics: dict, rows: list[StagedRow]) -> Path:
    """index.html: the metrics table, then one row per example with its pictures (staged in `stage`, shown in
    images/ now under a folder name of their own). Replacing the page is the switch from the previous report to
    this one: the previous page's pictures stay whole until then and are deleted after (report_stage)."""
    out = stage.out
    columns = list(rows[0].files) if rows else []
    metric_rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{_fmt(v)}</td></tr>" for k, v in metrics.items())
    header = "".join(f"<th>{html.escape(c)}</th>" for c in ["file", *columns])
    body = []
    for row in rows:
        cells = [f"<td class=\"name\">{html.escape(row.name)}<br><small>"
                 + " ".join(f"{k} {_fmt(v)}" for k, v in row.scores.items()) + "</small></td>"]
        cells += [f"<td><img src=\"{stage.link(file)}\" alt=\"{html.escape(column)}\"></td>"
                  for column, file in row.files.items()]
        body.append(f"<tr class=\"example\">{''.join(cells)}</tr>")
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; }}
table {{ border-collapse: collapse; margin-bottom: 1.5em; }}
th, td {{ border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }}
td.name {{ max-width: 14em; word-break: break-all; }}
img {{ width: 256px; image-rendering: pixelated; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<table class="metrics">{metric_rows}</table>
<table class="examples"><thead><tr>{header}</tr></thead><tbody>
{chr(10).join(body)}
</tbody></table></body></html>
"""
    path = out / "index.html"
    with stage.showing(), replaced_atomically(path) as handle:  # a kill, a Ctrl-C, a full disk: the old report or the
        handle.write(page.encode("utf-8"))  # new one, whole
    return path


def _fmt(value) -> str:
    if isinstance(value, list):
        return " ".join(map(_fmt, value))
    return f"{value:.4f}" if isinstance(value, float) else html.escape(str(value))


# ---------------------------------------------------------------------------------------------- evaluation
def default_segmenter() -> Path:
    """The bundled facade segmenter: in the source checkout's checkpoints/, or for an installed package (a wheel
    does not carry it) in checkpoints/ of the current folder."""
    return bundled_checkpoints() / "facades_segmenter.safetensors"


def _resolve_segmenter(choice: SegmenterChoice, label_maps_in: bool,
                       device: str) -> tuple[Optional[Segmenter], str]:
    """(segmenter, its name for the report). None = the bundled one when present; False = none. Only for
    label map -> photo models (`Translator.takes_label_maps`): others make no facade photos to segment."""
    if not label_maps_in or choice is False:
        return None, ""
    if isinstance(choice, Segmenter):
        return choice, "in memory"
    if choice is None:
        if not default_segmenter().exists():
            return None, ""
        choice = default_segmenter()
    return Segmenter.load(choice, device=device), str(choice)


def _to_pil(picture) -> Image.Image:
    """uint8 (3, H, W) tensor -> PIL RGB."""
    return Image.fromarray(picture.permute(1, 2, 0).numpy(), "RGB")


def evaluate(checkpoint: str | Path, data: str | Path, out: str | Path, limit: Optional[int] = None,
             segmenter: SegmenterChoice = None, split: str = "val", seed: int = 0, device: str = "auto",
             progress: bool = True, realism: bool = True, dropout: bool = True, backend: str = "auto",
             size: Optional[int] = None) -> dict:
    """Translate every image of `data/split`, write out/index.html and out/metrics.json; return the metrics.

    realism=False skips KID and the two-sample test (facades with a segmenter only); `seed` also seeds
    their subsets, classifier splits and the train-photo sample of the floor. dropout=False translates
    with dropout off whatever the model's config says. backend "onnx" (or a .onnx path) runs an exported
    ONNX model with onnxruntime (dropout always off). size: read the split (and the floor's photos) at
    this many pixels instead of the network's size; the model translates them as it would any photo.
    segmenter (the FCN-score's; None: the bundled one if present, False: none) given for a model that makes no
    facade photos from label maps is skipped with a `fcn_note` in the metrics (refused for a CycleGAN, as size is).
    """
    if limit is not None:  # "2" failed as "'<' not supported between instances of 'str' and 'int'"
        limit = bounded_int("--limit", limit, 1)
    refuse_report_folder(out)
    if size is not None:
        size = bounded_int("--size", size, MIN_SIZE, MAX_SIZE)
    translator = Translator.load(checkpoint, device=device, dropout=dropout, backend=backend)
    task = translator.task
    segmenter_given = segmenter is not None and segmenter is not False  # None: the bundled one if any; False: none
    if task == "unpaired":
        if size is not None:  # it was dropped without a word
            raise Pix2PixError("--size is for pix2pix models: a CycleGAN is tested on its pictures at its own size")
        if segmenter_given:  # dropped without a word too
            raise Pix2PixError("--segmenter is for facades label map -> photo models: a CycleGAN is tested on how "
                               "well its pictures come back")
        return _unpaired_report(checkpoint, data, out, limit, split, seed, device, progress)
    seg, seg_name = _resolve_segmenter(segmenter, translator.takes_label_maps, device)
    sizes = {"crop_size": size, "load_size": size} if size else {}
    read_config = dataclasses.replace(translator.config, data=str(data), **sizes)  # how the split is read
    scored = _scored_folder(translator.config, data, split)
    items = load_items(read_config, split, train=False, limit=limit, model=str(checkpoint))
    if not items:
        raise Pix2PixError(f"no images to evaluate in {data} ({split})")

    rows: list[StagedRow] = []
    # what the realism metrics read, kept only for them: the colour ones each photo's colour statistics, the
    # segmenter's features a copy at the segmenter's size (at_feature_size); kept to the end, so nothing when unread
    generated, reals = [], []
    keep = _realism_copy(task, seg, realism)
    totals: dict[str, list[float]] = {}
    confusion = {"": np.zeros((N_CLASSES, N_CLASSES), np.int64), "_real": np.zeros((N_CLASSES, N_CLASSES), np.int64)}
    with staged_report(Path(out)) as stage:  # each row's pictures on disk as it is made, not in memory
        for item in tqdm(items, desc=f"test {Path(checkpoint).stem}", unit="img", disable=not progress):
            if task == "colorize":
                truth = _to_pil(item.source)  # the colour photo; Translator takes its lightness as the input
                shown_input = grayscale(truth)
                output = translator.translate(truth, seed=seed)
            else:
                truth, shown_input = _to_pil(item.target), _to_pil(item.source)
                output = translator.translate(shown_input, seed=seed)
            scores = image_scores(as_unit(output), as_unit(truth))
            if keep is not None:
                generated.append(keep(output))
                reals.append(keep(truth))
            if task == "colorize":
                scores.update({f"gray_{k}": v for k, v in image_scores(as_unit(shown_input), as_unit(truth)).items()})
                scores["colorfulness_output"] = colorfulness(as_unit(output))
                scores["colorfulness_target"] = colorfulness(as_unit(truth))
            pictures = {"input": shown_input, "output": output, "ground truth": truth}
            if seg is not None:
                labels = clean_label_ids(shown_input)  # the input label map (already clean for facades) as ids
                predicted = seg.predict_ids(output)
                confusion[""] += confusion_matrix(predicted, labels)
                confusion["_real"] += confusion_matrix(seg.predict_ids(truth), labels)
                pictures["segmentation of output"] = ids_to_image(predicted)
            for key, value in scores.items():
                totals.setdefault(key, []).append(value)
            rows.append(stage.add(item.name, pictures, {k: scores[k] for k in ("l1", "psnr", "ssim")}))

        metrics: dict = {"checkpoint": str(checkpoint), "task": task, "split": scored["split"],
                         "folder": scored["folder"], **({"data_note": scored["note"]} if scored["note"] else {}),
                         "seed": seed, "count": len(rows),
                         "dropout": dropout and translator.config.test_dropout and translator.backend == "torch",
                         "backend": translator.backend, "size": read_config.crop_size}
        metrics.update({key: float(np.mean(values)) for key, values in totals.items()})
        if seg is not None:
            for suffix, matrix in confusion.items():
                metrics.update({f"fcn_{k}{suffix}": v for k, v in scores_from_confusion(matrix).items()})
            metrics["segmenter"] = seg_name
            if realism:
                metrics.update(_realism(seg, generated, reals, read_config, data, split, seed, keep))
        if task == "facades" and not translator.takes_label_maps:
            metrics["fcn_note"] = "skipped: the FCN-score segments generated photos; this model makes label maps"
        elif segmenter_given and not translator.takes_label_maps:  # a colorize model's was dropped without a word
            metrics["fcn_note"] = ("skipped: the FCN-score is for facades label map -> photo models; this is a "
                                   f"{task} model")
        if task == "colorize" and realism:
            metrics.update(_colour_realism(generated, reals, read_config, data, split, seed, keep))
        write_report_folder(stage, f"{Path(checkpoint).name} on {scored['title']}", metrics, rows)
    return metrics


def _realism_copy(task: str, seg: Optional[Segmenter], realism: bool):
    """What of each output and truth the realism metrics of this `test` read (a picture -> what to keep), or
    None when none runs: the colour ones (colorize) a photo's colour statistics (`colour_stats`: every full-size
    output and photo was kept to the end, ~24 GB for 1,000 at --size 2048), KID and the two-sample test (facades
    with a segmenter) a copy at the segmenter's size. Every full-size output and truth was kept without them."""
    if not realism:
        return None
    if task == "colorize":
        from .colour_realism import colour_stats

        return colour_stats  # the statistics the colour metrics read of a photo, not the full-size photo
    if seg is not None:
        from .realism import at_feature_size

        return lambda picture: at_feature_size(picture, seg.config.crop_size)
    return None


FOLDER_ITSELF = "(the folder itself)"  # metrics' split when a flat folder (no split folders) was scored


def _scored_folder(config, data, split: str) -> dict:
    """Which folder `split` of `data` reads (data/split, or a flat folder itself, dataset_layout.split_folder) as
    the report names it: split (FOLDER_ITSELF for a flat folder), folder (its path), title, and note when it is the
    very folder the model trained on (config.data's train split), which is then warned about unless split is
    train."""
    folder = split_folder(data, split)
    flat = folder != Path(data) / split
    # warned at the line calling evaluate: 1 the note's warn, 2 this, 3 evaluate, 4 its caller
    note = _training_images_note(config, [folder], split, lambda root: [split_folder(root, "train")], stacklevel=4)
    name = Path(data).name or str(data)
    return {"split": FOLDER_ITSELF if flat else split, "folder": str(folder), "note": note,
            "title": f"{name} (the folder itself: it has no {split}/)" if flat else f"{name}/{split}"}


def _training_images_note(config, scored: list[Path], split: str, train_folders, stacklevel: int) -> str:
    """The report's data_note when `scored` are the very folders the model trained on (`train_folders(config.data)`:
    pix2pix's train/, a CycleGAN's trainA/ and trainB/), else "". Warned about as well unless split is train (the
    folder itself of a flat folder, say): asked for by --split train, it is a note (`test` prints it). `stacklevel`:
    warnings.warn's, from here to the line that called evaluate (or evaluate_unpaired), as each caller knows it."""
    if not config.data:  # "" in an imported official model
        return ""
    try:
        trained_on = train_folders(config.data)
    except Pix2PixError:  # moved or deleted since
        return ""
    if [path.resolve() for path in trained_on] != [path.resolve() for path in scored]:
        return ""
    note = (f"{' and '.join(map(str, scored))} {'is the folder' if len(scored) == 1 else 'are the folders'} this "
            "model trained on: these scores are on its training images")
    if split != "train":
        warnings.warn(f"{note}, not held-out ones; give --data a folder with a val/ (or test/) split the model has "
                      "not seen", stacklevel=stacklevel)
    return note


def evaluate_unpaired(checkpoint: str | Path, data: str | Path, out: str | Path, limit: Optional[int] = None,
                      split: str = "test", seed: int = 0, device: str = "auto", progress: bool = True) -> dict:
    """A CycleGAN checkpoint on `data/{split}A` and `data/{split}B` (the default split val: testA/ and testB/
    when there is no valA/): rows input | translated | reconstructed for both directions, and how well each
    cycle returns to its input (cycle_l1_A: |F(G(a)) - a|, ...). There is no ground truth for unpaired data."""
    return _unpaired_report(checkpoint, data, out, limit, split, seed, device, progress)


def _unpaired_report(checkpoint: str | Path, data: str | Path, out: str | Path, limit: Optional[int], split: str,
                     seed: int, device: str, progress: bool) -> dict:
    """evaluate_unpaired's work, called by it and by evaluate alike: its warning points at their caller's line
    either way (evaluate called evaluate_unpaired, one frame more: called directly, it warned at its caller's
    caller)."""
    from .checkpoint import held_generators, official_cyclegan_note, read_header, resolve_checkpoint

    if limit is not None:  # 2.0 failed as "slice indices must be integers", 0 as "no images to evaluate"
        limit = bounded_int("--limit", limit, 1)
    refuse_report_folder(out)
    if str(checkpoint).lower().endswith(".onnx"):  # not a safetensors header to read
        raise Pix2PixError(f"{checkpoint} is an ONNX export: it holds one of the CycleGAN's two generators; test "
                           "needs both (a training checkpoint, or an export made with --direction both)")
    held = held_generators(checkpoint)
    if held != ["AtoB", "BtoA"]:  # an A -> B export was refused only as it loaded F, advising `--direction BtoA`
        header = read_header(resolve_checkpoint(checkpoint))
        imported = official_cyclegan_note(header)
        raise Pix2PixError(f"{checkpoint} holds the CycleGAN's {'B -> A' if held == ['BtoA'] else 'A -> B'} "
                           "generator only; test needs both (each picture goes there and back) " + (
                               "and an official CycleGAN model is one: translate with it (`translate`), or import "
                               "it with the official model named the other way round (`import-official --reverse`)"
                               if imported else "(a training checkpoint, or an export made with --direction both)"))
    forward = {"A": Translator.load(checkpoint, device=device, direction="AtoB"),
               "B": Translator.load(checkpoint, device=device, direction="BtoA")}
    backward = {"A": forward["B"], "B": forward["A"]}
    root = Path(data)
    if split == "val" and not (root / "valA").is_dir():  # the default split: CycleGAN datasets have test only
        split = "test"
    rows: list[StagedRow] = []
    folders = unpaired_folders(root, split)  # a split given without them: refused
    # warned at the line calling evaluate or evaluate_unpaired: 1 the note's warn, 2 this, 3 either, 4 its caller
    note = _training_images_note(forward["A"].config, list(folders), split,
                                 lambda trained: list(unpaired_folders(trained, "train")), stacklevel=4)
    metrics: dict = {"checkpoint": str(checkpoint), "task": "unpaired", "split": split,
                     **({"data_note": note} if note else {}), "seed": seed}
    with staged_report(Path(out)) as stage:  # each row's pictures on disk as it is made, not in memory
        for side, folder in zip(("A", "B"), folders):
            paths = load_folder_images(folder)[:limit]
            if not paths:
                raise Pix2PixError(f"no images to evaluate in {folder}")
            totals: dict[str, list[float]] = {}
            skipped: list[str] = []
            for path in tqdm(paths, desc=f"test {side} -> {'B' if side == 'A' else 'A'}", unit="img",
                             disable=not progress):
                picture = _scorable_picture(path, skipped)
                if picture is None:
                    continue
                translated = forward[side].translate(picture, seed=seed)
                reconstructed = backward[side].translate(translated, seed=seed)
                scores = image_scores(as_unit(reconstructed), as_unit(picture))
                for key, value in scores.items():
                    totals.setdefault(key, []).append(value)
                # scored at full size, shown as small copies (three full-size copies of each of 100 phone photos, held
                # until the report was written, were 11 GB; staged on disk now, they would still fill it)
                rows.append(stage.add(f"{side}/{path.name}", {"input": _for_report(picture), "translated": _for_report(
                    translated), "reconstructed": _for_report(reconstructed)}, scores))
            warn_skipped(skipped)  # as the pix2pix split's read: the others are scored, the skipped named in one line
            refuse_if_none_usable(folder, len(paths) - len(skipped), skipped)
            metrics[f"count_{side}"] = len(paths) - len(skipped)
            metrics.update({f"cycle_{key}_{side}": float(np.mean(values)) for key, values in totals.items()})
        title = f"{Path(checkpoint).name} on {root.name}/{split}A and {split}B"
        write_report_folder(stage, title, metrics, rows)
    return metrics


def _for_report(picture: Image.Image) -> Image.Image:
    """A copy of `picture` at most REPORT_SIDE px on its longest side (the same picture when it is that small)."""
    if max(picture.size) <= REPORT_SIDE:
        return picture
    small = picture.copy()
    small.thumbnail((REPORT_SIDE, REPORT_SIDE), Image.Resampling.LANCZOS)
    return small


def _scorable_picture(path: Path, skipped: list[str]) -> Optional[Image.Image]:
    """The picture at `path` in RGB, or None with the reason added to `skipped`: an unreadable file, or one
    smaller than SSIM's window (a CycleGAN is tested at the pictures' own size, so a 1 x 1 one reaches SSIM)."""
    try:
        picture = open_image(path)
    except ImageError as exc:
        skipped.append(str(exc))
        return None
    if min(picture.size) < MIN_SCORED_SIDE:
        skipped.append(f"{path}: {picture.width}x{picture.height}, too small to score (SSIM needs "
                       f"{MIN_SCORED_SIDE} px a side)")
        return None
    return picture


def _floor_photos(config, data, split: str, count: int, seed: int, keep) -> tuple[list, str]:
    """A seeded sample of `count` real photos of the other split (train, or val when scoring train), read as
    the scored split is (the photo of each pair; colorize: the photo itself), each as `keep` keeps the scored
    photos (`_realism_copy`: a copy at the segmenter's size, or the colour statistics), and that split's name.
    The real-vs-real floor of the two-sample tests; empty when that split is missing or unreadable. Reduced at
    once: all of them at the scored size were held to the end (at --size 2048, 12.6 MB each). A sample under the
    memory budget is decoded whole first (load_items; at most memory_budget_mb), a larger one one photo at a time
    from the disk cache."""
    other = "train" if split != "train" else "val"
    if not (Path(data) / other).is_dir():
        return [], other
    try:
        # only the sampled photos are decoded (a seeded sample of as many as the real photos)
        items = load_items(dataclasses.replace(config, data=str(data)), other, train=False, limit=count,
                           sample_seed=seed, advise=False)  # the scored split's read said what it had to
    except Pix2PixError:  # no or unreadable photos
        return [], other
    return [keep(_to_pil(item.source if config.task == "colorize" else item.target)) for item in items], other


def _floor_note(others: list, other: str, data, scored: int) -> str:
    """Why the real-vs-real floor is missing, or why it is noisier than the numbers beside it (a floor of fewer
    photos than were scored: its two-sample test and KID then run on that few); "" when it is what it says."""
    if len(others) < 2:
        return f"skipped: no readable {other} photos in {data} for the real-vs-real floor"
    if len(others) < scored:
        return (f"the real-vs-real floor has only {len(others)} {other} photos for the {scored} scored: it is "
                "noisier than the numbers beside it")
    return ""


FEW_FOR_REALISM = 50  # below this many images the report says its distribution metrics are noise


def _with_notes(metrics: dict, prefix: str, floor_note: str, count: int) -> dict:
    """`metrics` with the notes a reader of the report (not only of the terminal) needs beside the numbers:
    why the floor is missing or noisy, and that on a few images these numbers are noise (2 photos: a two-sample
    accuracy of 1.0, a KID of -7.5)."""
    notes = {}
    if floor_note:
        notes[f"{prefix}realism_floor_note"] = floor_note
    if count < FEW_FOR_REALISM:
        notes[f"{prefix}realism_note"] = (f"on {count} images these swing widely from sample to sample (the *_floor "
                                          f"shows how far): compare models on {FEW_FOR_REALISM} images or more")
    return {**metrics, **notes}


def _realism(seg: Segmenter, generated: list, reals: list, config, data, split: str, seed: int, keep) -> dict:
    """realism_metrics for the generated vs real photos, with the floor from real photos of the train split;
    `keep` (`_realism_copy`) brings each photo to the segmenter's size."""
    from .realism import realism_metrics

    if len(reals) < 2:
        return {"realism_note": "skipped: KID and the two-sample test need at least 2 images"}
    others, other = _floor_photos(config, data, split, len(reals), seed, keep)
    metrics = realism_metrics(seg, generated, reals, others if len(others) >= 2 else None, seed=seed)
    return _with_notes(metrics, "", _floor_note(others, other, data, len(reals)), len(reals))


def _colour_realism(generated: list, reals: list, config, data, split: str, seed: int, keep) -> dict:
    """The colour realism metrics of colorized vs real photos (their `colour_stats`, what `keep` makes of a
    photo), with the floor from photos of the train split."""
    from .colour_realism import colour_realism_of_stats

    if len(reals) < 2:
        return {"colour_realism_note": "skipped: the colour two-sample test needs at least 2 images"}
    others, other = _floor_photos(config, data, split, len(reals), seed, keep)
    metrics = colour_realism_of_stats(generated, reals, others if len(others) >= 2 else None, seed=seed)
    return _with_notes(metrics, "colour_", _floor_note(others, other, data, len(reals)), len(reals))


def format_metrics(metrics: dict) -> str:
    """The numeric metrics (and lists of them) as aligned `name value` lines, for the terminal."""
    def number(value) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool)

    def show(value) -> str:
        if isinstance(value, list):
            return " ".join(map(show, value))
        return f"{value:.4f}" if isinstance(value, float) and math.isfinite(value) else str(value)

    numbers = {k: v for k, v in metrics.items() if k != "seed"
               and (number(v) or (isinstance(v, list) and v and all(map(number, v))))}
    width = max(map(len, numbers), default=0)
    return "\n".join(f"{k:<{width}}  {show(v)}" for k, v in numbers.items())
