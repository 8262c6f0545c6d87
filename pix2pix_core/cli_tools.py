"""The CLI commands that use or judge trained models: test, translate, export, import-official,
train-segmenter.

Heavy imports happen inside the handlers so `--help` stays instant.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path


def thread_count(text: str) -> int:
    """argparse type of --threads: a positive whole number (torch refuses others with a traceback)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {text[:40]!r}")
    return value


def seed_number(text: str) -> int:
    """argparse type of an inference --seed: 0 to 2**32 - 1, as the app's (torch overflowed on larger ones)."""
    from .errors import Pix2PixError
    from .limits import seed_value

    try:
        return seed_value(int(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text[:40]!r}") from None
    except Pix2PixError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, but not the meaningless "(default: None)" of required or optional-off options."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


def refuse_bad_output(out, folder: bool, suffix: str = "", source=None) -> None:
    """--out checked before the work, not after it: a folder given for a file (or a file for a folder, or a path
    below a file) failed once the work was done (train-segmenter after its whole training) with OSError's words
    ("File exists"), or a traceback (`test`). `source`: the file the command reads, which --out naming it is
    told first (the most exact of the reasons)."""
    from .atomic_files import output_problem
    from .checkpoint import refuse_overwriting
    from .errors import Pix2PixError

    if source is not None:
        refuse_overwriting(source, out)
    problem = output_problem(out, folder, suffix)
    if problem:
        raise Pix2PixError(f"--out: {problem}")
    try:
        there = not folder and Path(out).is_file()
    except OSError:  # cannot look (no permission): the write then says why
        there = False
    if there:
        refuse_replacing_another_file(Path(out))


def refuse_replacing_another_file(out: Path) -> None:
    """An export or import replaces an earlier model file of that name (the usual way to refresh one), never
    another kind of file a slip in --out names: a photo, a document (an unknown suffix is written as
    safetensors), another program's safetensors model, or a run's training checkpoint (its D, optimizers and
    resume state would be gone for a generator alone)."""
    from .checkpoint import FORMAT, read_header
    from .errors import CheckpointError, Pix2PixError

    if out.suffix.lower() not in FORMAT_OF_SUFFIX:
        raise Pix2PixError(f"--out: {out} exists and is not a model file: give another --out (.safetensors, "
                           ".onnx, .pt or .ts)")
    if FORMAT_OF_SUFFIX[out.suffix.lower()] != "safetensors":
        return
    try:
        header = read_header(out)
    except CheckpointError:
        header = {}
    if header.get("format", "").split("/")[0] != FORMAT.split("/")[0]:
        raise Pix2PixError(f"--out: {out} exists and is not a Pix2Pix Studio model (another program's file?): give "
                           "another --out, or delete it first")
    if header.get("kind") == "training":
        raise Pix2PixError(f"--out: {out} is a training checkpoint (what --resume continues that run from): give "
                           "another --out")


EXPORT_FORMATS = ("safetensors", "onnx", "torchscript")
FORMAT_OF_SUFFIX = {".safetensors": "safetensors", ".onnx": "onnx", ".pt": "torchscript", ".ts": "torchscript"}
SUFFIX_OF_FORMAT = {"safetensors": ".safetensors", "onnx": ".onnx", "torchscript": ".pt"}


def export_format(requested, out: str) -> str:
    """--format, or the one --out's suffix names; a suffix of another format is refused (a safetensors file
    named .onnx would be loaded as ONNX, and fail)."""
    from .errors import Pix2PixError

    named = FORMAT_OF_SUFFIX.get(Path(out).suffix.lower())
    if requested and named and named != requested:
        raise Pix2PixError(f"--out {Path(out).name} names a file of format {named}, but --format is {requested}; "
                           f"give the file the suffix of its format")
    return requested or named or "safetensors"


def cmd_export(args) -> int:
    from .checkpoint import EXPORT_DTYPE_OF_NAME, export_generator
    from .errors import Pix2PixError

    args.format = export_format(args.format, args.out)
    refuse_bad_output(args.out, folder=False, suffix=SUFFIX_OF_FORMAT[args.format], source=args.checkpoint)
    if args.format != "safetensors":
        from .export_formats import export_model

        if args.dtype not in (None, "fp32"):
            raise Pix2PixError(f"--format {args.format} writes fp32 weights; --dtype {args.dtype} is for safetensors")
        _set_threads(getattr(args, "threads", None))
        if args.direction == "both":
            raise Pix2PixError(f"--format {args.format} holds one generator; --direction both is for safetensors")
        path = export_model(args.checkpoint, args.out, args.format, direction=args.direction,
                            weights=args.weights or "averaged")
        print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, {args.format}, fp32, dropout off, "
              f"dynamic batch/height/width; {_which_weights(args)})")
        return 0
    path = export_generator(args.checkpoint, args.out, EXPORT_DTYPE_OF_NAME[args.dtype or "fp16"],
                            direction=args.direction, weights=args.weights or "averaged")
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB; {_which_weights(args)})")
    return 0


def _which_weights(args) -> str:
    """Which generator an export wrote, in words: a CycleGAN's direction, or G's moving average or the
    trained G (`--weights` picks between them in a training checkpoint that kept an average; it is named
    only when given and it changed nothing)."""
    from .checkpoint import checkpoint_outline, config_of

    prefixes, header = checkpoint_outline(args.checkpoint)
    given = args.weights is not None
    if "BtoA" in (args.direction, header.get("direction")):
        return "the CycleGAN's B -> A generator F"
    if args.direction == "both":
        return "both of the CycleGAN's generators, G (A -> B) and F (B -> A)"
    if config_of(header, args.checkpoint).model == "cyclegan":
        return "the CycleGAN's A -> B generator G"
    if "E" in prefixes:
        return "the trained G, not its moving average" if args.weights == "trained" else "G's moving average"
    held = header.get("generator_weights")
    if held:  # an export holds one generator already, and says which
        which = "G's moving average" if held == "averaged" else "the trained G"
        return (f"{which}, as the export read holds it"
                + (" (--weights chooses in a training checkpoint)" if given else ""))
    return "the trained G" + (": the run kept no moving average (--ema-decay), so --weights changed nothing"
                              if given else "")


def _note_backend(translator) -> None:
    config = translator.config
    if translator.backend == "onnx" and config.dropout and config.test_dropout:
        print("note: the ONNX model runs with dropout off (deterministic; --seed has no effect)", file=sys.stderr)


def _what_a_pix2pix_import_needs(args) -> str:
    """The refusal of an import that is not a CycleGAN's and lacks --netG or --task. A U-Net --netG, a pix2pix
    --task or --model pix2pix says the file is a pix2pix model: then only what is missing is asked for (`--netG
    unet_256` alone was told to say which model the file is); with none of them it may be either kind."""
    from .official import IMPORTABLE_GENERATORS, IMPORT_TASKS

    if args.model != "pix2pix" and args.netG not in IMPORTABLE_GENERATORS and args.task not in IMPORT_TASKS:
        return ("say which model the file is: a pix2pix one with --netG (unet_256 for all published ones) and --task "
                "(facades, aligned or colorize), or an official CycleGAN one (horse2zebra.pth, style_monet.pth, ...) "
                "with --model cyclegan")
    hints = {"--netG": "--netG unet_256 (all published pix2pix models) or unet_128",
             "--task": "--task facades (facades_label2photo), aligned (any other A|B model: sat2map, map2sat, "
                       "edges2shoes, day2night, ...) or colorize (an official colorization model)"}
    missing = [name for name, value in (("--netG", args.netG), ("--task", args.task)) if value is None]
    return f"a pix2pix import needs {' and '.join(missing)}: {'; '.join(hints[name] for name in missing)}"


def cmd_import_official(args) -> int:
    import json

    from .checkpoint import EXPORT_DTYPE_OF_NAME, read_header
    from .errors import Pix2PixError
    from .official import REVERSE_NEEDS_CYCLEGAN, import_official

    cyclegan = args.model == "cyclegan" or (args.model is None and args.task == "unpaired")
    if args.reverse is not None and not cyclegan:  # before the questions a pix2pix import asks
        raise Pix2PixError(REVERSE_NEEDS_CYCLEGAN)
    if not cyclegan and (args.netG is None or args.task is None):
        raise Pix2PixError(_what_a_pix2pix_import_needs(args))
    refuse_bad_output(args.out, folder=False, suffix=".safetensors", source=args.pth)
    # --no-dropout is the official CycleGAN test flag too: a CycleGAN import is always without dropout
    path = import_official(args.pth, args.out, netG=args.netG, task=args.task, direction=args.direction,
                           ngf=args.ngf, dtype=EXPORT_DTYPE_OF_NAME[args.dtype],
                           dropout=False if args.no_dropout else None, model=args.model, reverse=args.reverse)
    size = f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)"
    header = read_header(path)
    origin = json.loads(header["imported_from"])
    if not cyclegan:
        print(f"{size}: official {origin['netG']}, task {args.task}")
        return 0
    pair = origin.get("reverse")  # the B -> A file of a pair (--reverse)
    if pair:
        what = (f"generators, A -> B from {origin['file']} and B -> A from {pair['file']} (it translates and tests "
                "either way)")
    else:
        what = "generator, " + ("B -> A (the CycleGAN's F)" if header.get("direction") == "BtoA" else "A -> B")
    ignored = origin.get("ignored_keys", 0) + (pair or {}).get("ignored_keys", 0)
    print(f"{size}: official CycleGAN {origin['netG']} {what}"
          + (f"; {ignored} instance-norm running statistics of an older PyTorch ignored, as the official loader "
             "does" if ignored else ""))
    return 0


def _set_threads(threads) -> None:
    if threads:
        import torch

        torch.set_num_threads(threads)


def cmd_test(args) -> int:
    from .bundled import WHERE_TO_GET_THEM
    from .evaluate import default_segmenter, evaluate, format_metrics

    _set_threads(args.threads)
    refuse_bad_output(args.out, folder=True)
    segmenter = False if args.no_segmenter else args.segmenter
    metrics = evaluate(args.checkpoint, args.data, args.out, limit=args.limit, segmenter=segmenter,
                       split=args.split, seed=args.seed, device=args.device, realism=not args.no_realism,
                       dropout=not args.no_dropout, backend=args.backend, size=args.size)
    print(format_metrics(metrics))
    if "data_note" in metrics and args.split == "train":  # another split's was a warning (evaluate) already
        print(f"note: {metrics['data_note']}")
    if "fcn_note" in metrics:
        print(f"note: FCN-score {metrics['fcn_note']}")
    elif metrics["task"] == "facades" and "fcn_miou" not in metrics and not args.no_segmenter:
        print(f"note: no facade segmenter at {default_segmenter()}, FCN-score skipped; {WHERE_TO_GET_THEM} "
              f"(pass --segmenter FILE), or train one with `train-segmenter`")
    for key in ("realism_note", "realism_floor_note", "colour_realism_note", "colour_realism_floor_note"):
        if key in metrics:
            print(f"note: {'colour ' if key.startswith('colour') else ''}realism metrics: {metrics[key]}")
    print(f"report: {Path(args.out) / 'index.html'}")
    return 0


def _input_files(inputs: list[str]) -> tuple[list[Path], list[str]]:
    """Expand folders into their image files; paths that do not exist become error lines."""
    from .images import load_folder_images

    files, errors = [], []
    for raw in inputs:
        path = Path(raw)
        if path.is_dir():
            found = load_folder_images(path)
            if not found:
                errors.append(f"{path}: folder holds no image files")
            files.extend(found)
        elif path.exists():
            files.append(path)
        else:
            errors.append(f"{path}: file not found")
    return files, errors


def cmd_translate(args) -> int:
    from .atomic_files import missing_folders, remove_empty
    from .errors import Pix2PixError
    from .inference import Translator

    _set_threads(args.threads)
    # a bad checkpoint stops here, one line
    translator = Translator.load(args.checkpoint, device=args.device, backend=args.backend, direction=args.direction)
    _note_backend(translator)
    label_maps = translator.takes_label_maps
    files, failures = _input_files(args.inputs)
    for message in failures:
        print(f"error: {message}", file=sys.stderr)
    out = Path(args.out)
    if any(path.parent.resolve() == out.resolve() for path in files):
        raise Pix2PixError(f"--out {out} holds input images: the translations would replace or mix with them; "
                           "write to another folder")
    refuse_bad_output(out, folder=True)
    created = missing_folders(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise Pix2PixError(f"cannot create --out {out}: {exc.strerror or exc}") from None
    try:
        written = _translate_files(translator, files, out, failures, label_maps, args.seed)
    finally:
        remove_empty(created)  # nothing translated (no input readable, a Ctrl-C): no empty --out left behind
    print((f"wrote {written} image(s) to {out}" if written else "wrote nothing")
          + (f"; {len(failures)} failed" if failures else ""))
    return 1 if failures else 0


def _translate_files(translator, files: list[Path], out: Path, failures: list[str], label_maps: bool,
                     seed: int) -> int:
    """Translate `files` into `out`, each written whole or not at all; an image that fails is added to
    `failures` and the others go on. Returns how many were written."""
    from tqdm import tqdm

    from .errors import ImageError
    from .images import save_image_atomically
    from .palette import looks_like_photo, open_label_map

    used: set[str] = set()
    written = 0
    for path in tqdm(files, unit="img", desc=f"translate ({translator.task})", disable=len(files) < 2):
        try:
            source = open_label_map(path) if label_maps else path  # decoded once (class-id maps as colours)
            if label_maps and looks_like_photo(source):
                tqdm.write(f"note: {path.name} looks like a photo, not a label map (its colours are not the 12 "
                           "class colours); the result is a guess", file=sys.stderr)
            result = translator.translate(source, seed=seed)
        except ImageError as exc:  # one odd file must not stop the others
            failures.append(str(exc))
            tqdm.write(f"error: {exc}", file=sys.stderr)
            continue
        name, n = f"{path.stem}.png", 1
        # the same file name from two folders, or a.jpg and A.jpg (one file on macOS's and Windows' disks): keep both
        while name.lower() in used:
            n += 1
            name = f"{path.stem}_{n}.png"
        if n > 1:
            tqdm.write(f"note: {path} is written as {name}: {path.stem}.png is another input's translation")
        used.add(name.lower())
        try:
            save_image_atomically(result, out / name)
        except OSError as exc:  # a full disk, a folder of that name: this file fails, the others go on
            failures.append(f"{out / name}: {exc.strerror or exc}")
            tqdm.write(f"error: cannot write {out / name}: {exc.strerror or exc}", file=sys.stderr)
            continue
        written += 1
    return written


def cmd_train_segmenter(args) -> int:
    from .segment import SegmenterConfig, train_segmenter

    _set_threads(args.threads)
    fields = {f.name for f in dataclasses.fields(SegmenterConfig)}
    values = {k: v for k, v in vars(args).items() if k in fields}
    from .errors import Pix2PixError

    if not Path(args.data).is_dir():
        raise Pix2PixError(f"data folder not found: {args.data}")
    refuse_bad_output(args.out, folder=False, suffix=".safetensors")
    if Path(args.out).exists() and not args.overwrite:  # before training: the default --out is the bundled one
        raise Pix2PixError(f"{args.out} exists (the FCN-score's segmenter when it is the bundled one): give another "
                           "--out, or --overwrite to replace it")
    result = train_segmenter(SegmenterConfig(**values))
    size = result.path.stat().st_size / 1e6
    print(f"wrote {result.path} ({size:.1f} MB) after {result.steps} steps in {result.seconds / 60:.1f} min; "
          f"final train loss {result.train_loss:.3f}")
    if result.val:
        print("val (real photos): " + ", ".join(f"{k} {v:.3f}" for k, v in result.val.items()))
    return 0


def _add_inference_args(p, seed_help: str) -> None:
    """--seed, --device and --threads, shared by the commands that run a trained generator."""
    p.add_argument("--seed", type=seed_number, default=0, help=seed_help)
    p.add_argument("--device", default="auto", help="cpu, cuda, mps or auto")
    p.add_argument("--threads", type=thread_count, default=None, help="CPU threads for torch (default: all cores)")
    p.add_argument("--backend", choices=("auto", "torch", "onnx"), default="auto",
                   help="torch: a .safetensors checkpoint with PyTorch; onnx: a file from `export --format onnx` "
                        "with onnxruntime (CPU, fp32, dropout off); auto: onnx for a .onnx path")


def _add_test(sub) -> None:
    p = sub.add_parser(
        "test", help="evaluate a checkpoint on a split: index.html + metrics.json",
        description="Run a checkpoint over a split without jitter (as Translator does: its batch-norm mode, "
                    "dropout on, fixed seed), write REPORT_DIR/index.html (input | output | truth "
                    "[| segmentation of the output for facades]) and REPORT_DIR/metrics.json (count, l1, psnr, "
                    "ssim on RGB in [0,1]; colorize adds colourfulness, the gray baseline, the colour two-sample "
                    "accuracy with its floor and the colour-detail ratio; facades adds the "
                    "FCN-scores when a segmenter is available, and the realism metrics: KID x 1000 and the "
                    "real-vs-generated two-sample accuracy (0.5 = indistinguishable) in the segmenter's features, "
                    "with the same for real train vs real photos as the *_floor keys).",
        formatter_class=HelpFormatter)
    p.add_argument("--checkpoint", required=True, metavar="PATH", help="training or exported checkpoint, or a run folder")
    p.add_argument("--data", required=True, metavar="DIR", help="dataset folder (its --split sub-folder is used when present)")
    p.add_argument("--out", required=True, metavar="REPORT_DIR", help="report folder to write")
    p.add_argument("--split", default="val",
                   help="sub-folder of --data to evaluate (unpaired data: SPLITA/ and SPLITB/; the default reads "
                        "testA/ and testB/ when there is no valA/)")
    p.add_argument("--limit", type=int, default=None, help="evaluate only the first N images")
    p.add_argument("--segmenter", default=None,
                   help="facade segmenter for the FCN-score (default: facades_segmenter.safetensors in checkpoints/ "
                        "of the source checkout, else of the current folder, when it exists)")
    p.add_argument("--no-segmenter", action="store_true", help="skip the FCN-score (and the realism metrics)")
    p.add_argument("--no-realism", action="store_true",
                   help="skip KID and the two-sample tests (facades: in the segmenter's features; colorize: on colour "
                        "statistics; a few seconds on a CPU)")
    p.add_argument("--no-dropout", action="store_true", help="translate with dropout off (default: as the model says)")
    p.add_argument("--size", type=int, default=None, metavar="PIXELS",
                   help="read the split at this size instead of the network's (compare models trained at "
                        "different sizes on the same pictures, e.g. a 128 and a 256 px colorizer at --size 256)")
    _add_inference_args(p, "dropout noise seed (the same for every image); also seeds the realism metrics "
                             "(classifier splits, KID subsets, the train-photo sample of the floor)")
    p.set_defaults(handler=cmd_test)


def _add_translate(sub) -> None:
    p = sub.add_parser(
        "translate", help="translate image files or folders with a checkpoint",
        description="Translate each input image (any size and mode) and write OUT/<name>.png at the input's size. "
                    "Facades: label maps -> photos; colorize: photos (colour or gray) -> colour photos. Unreadable "
                    "files are reported one line each and the rest are still translated; the exit status is 1 if "
                    "any failed.",
        formatter_class=HelpFormatter)
    p.add_argument("--checkpoint", required=True, metavar="PATH", help="training or exported checkpoint, or a run folder")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files and/or folders of images")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--direction", choices=("AtoB", "BtoA"), default=None,
                   help="for a CycleGAN checkpoint: A -> B (its generator G) or B -> A (F) (default: A -> B, or "
                        "the one generator an export holds)")
    _add_inference_args(p, "dropout noise seed; another seed gives another variation")
    p.set_defaults(handler=cmd_translate)


def _add_train_segmenter(sub) -> None:
    from .segmenter_config import SegmenterConfig

    defaults = SegmenterConfig()
    p = sub.add_parser(
        "train-segmenter", help="train the facade segmenter used for the FCN-score",
        description="Train a U-Net (photo -> 12 CMP facade classes, cross-entropy) on the photos of the train "
                    "split of an aligned facades folder (A = photo, B = label map), with random crop + mirror. "
                    "Scores the val split's real photos at the end and saves an fp16 safetensors file.",
        formatter_class=HelpFormatter)
    p.add_argument("--data", required=True, help="facades folder with train/ (and val/) A|B images")
    p.add_argument("--out", default=defaults.out, help="output .safetensors file (an existing one is refused "
                                                       "before training, unless --overwrite)")
    p.add_argument("--overwrite", action="store_true", help="replace --out when it exists (the default --out is "
                                                            "the bundled segmenter that `test` uses)")
    options = [
        ("--epochs", int, "passes over the training photos"),
        ("--batch-size", int, "photos per step"),
        ("--lr", float, "Adam learning rate (cosine-decayed to 0)"),
        ("--ngf", int, "U-Net width"),
        ("--num-downs", int, "U-Net halvings (crop size must be a multiple of 2**this)"),
        ("--crop-size", int, "random crop size (the network's input)"),
        ("--load-size", int, "resize to this before the random crop"),
        ("--max-images", int, "use at most this many training images, spread evenly over the file-name order"),
        ("--seed", int, "random seed"),
    ]
    for flag, kind, text in options:
        field = flag[2:].replace("-", "_")
        p.add_argument(flag, type=kind, default=getattr(defaults, field), help=text)
    p.add_argument("--direction", choices=("AtoB", "BtoA"), default=defaults.direction,
                   help="which half of each A|B image is the photo")
    p.add_argument("--precision", choices=("auto", "bf16", "fp32"), default=defaults.precision,
                   help="auto = bf16 autocast on CPU/CUDA")
    p.add_argument("--device", default=defaults.device, help="cpu, cuda, mps or auto")
    p.add_argument("--threads", type=thread_count, default=None, help="CPU threads for torch (default: all cores)")
    p.set_defaults(handler=cmd_train_segmenter)


def add_commands(sub) -> None:
    """The commands of this module, built from torch-free names and defaults (export_choices, segmenter_config):
    `--help` of any command loads no torch."""
    from .export_choices import EXPORT_DTYPE_NAMES, GENERATOR_WEIGHTS

    _add_test(sub)
    _add_translate(sub)
    p = sub.add_parser("export", help="write the generator alone (for shipping), or as ONNX / TorchScript",
                       description="safetensors (default): the generator of a checkpoint as one small file with its "
                                   "config in the header (no discriminator, no optimizer moments), loadable by "
                                   "Translator, test, translate and the app without flags. onnx (opset 17) and "
                                   "torchscript: the generator in inference form for other runtimes: fp32, dropout "
                                   "off, batch norm frozen as the Translator uses it (running statistics for a model "
                                   "trained at batch size > 1, each image's own statistics at batch size 1), dynamic "
                                   "batch, height and width (multiples of 256 for unet_256, 128 for unet_128); the "
                                   "config travels in the ONNX metadata_props (`pix2pix_config`) and in the "
                                   "TorchScript file's extra file pix2pix_metadata.json.",
                       formatter_class=HelpFormatter)
    p.add_argument("--checkpoint", required=True, help="training checkpoint, exported .safetensors or run folder")
    p.add_argument("--out", required=True, help="output file (.safetensors, .onnx, or .pt / .ts for TorchScript)")
    p.add_argument("--direction", choices=("AtoB", "BtoA", "both"), default=None,
                   help="for a CycleGAN checkpoint: export G (A -> B), F (B -> A) or both (safetensors only: "
                        "the file then translates and tests either way) (default: G, or the one generator an "
                        "export holds)")
    p.add_argument("--weights", choices=GENERATOR_WEIGHTS, default=None,
                   help="for a run trained with --ema-decay: its moving average of G (the default, what inference "
                        "uses) or the trained G itself, so one run gives both models to compare")
    p.add_argument("--format", choices=EXPORT_FORMATS, default=None,
                   help="file format (default: from --out's suffix, .onnx / .pt / .ts, else safetensors; onnx needs "
                        "`pip install -r requirements-onnx.txt`)")
    p.add_argument("--dtype", choices=EXPORT_DTYPE_NAMES, default=None,
                   help="weight precision of a safetensors export (default fp16); onnx/torchscript are fp32")
    p.set_defaults(handler=cmd_export)
    _add_import_official(sub)
    _add_train_segmenter(sub)


def _add_import_official(sub) -> None:
    from .export_choices import EXPORT_DTYPE_NAMES

    p = sub.add_parser(
        "import-official", help="convert an official pix2pix or CycleGAN .pth to a safetensors generator",
        description="Read a pretrained generator of the official PyTorch pix2pix / CycleGAN code "
                    "(junyanz/pytorch-CycleGAN-and-pix2pix, e.g. facades_label2photo/latest_net_G.pth, or with "
                    "--model cyclegan horse2zebra.pth) with torch.load(weights_only=True) only (a pickle holding "
                    "anything but tensors is refused), check every key and shape against our network, and write an "
                    "exported generator (the same file `export` writes) that Translator, test, translate and the "
                    "app load without flags. It runs as the official test script does: pix2pix with per-image "
                    "batch-norm statistics and dropout on; CycleGAN with per-image instance norm, no dropout. "
                    "A CycleGAN with its other direction (--reverse zebra2horse.pth) becomes one file with both "
                    "generators, as `export --direction both` writes it.",
        formatter_class=HelpFormatter)
    p.add_argument("pth", metavar="PTH", help="the official latest_net_G.pth (or NAME.pth from their download URL)")
    p.add_argument("--model", choices=("pix2pix", "cyclegan"), default=None,
                   help="pix2pix (a U-Net; the default) or cyclegan: an official CycleGAN generator "
                        "(horse2zebra.pth, style_monet.pth, ...), one ResNet translating the A -> B of its name "
                        "(task unpaired)")
    p.add_argument("--reverse", default=None, metavar="PTH",
                   help="cyclegan: the official model named the other way round (zebra2horse.pth for "
                        "horse2zebra.pth), checked alike (same netG, ngf and channels) and stored as the B -> A "
                        "generator F beside PTH's A -> B: one file that translates and tests (testA/, testB/) either "
                        "way, as `export --direction both` writes it")
    p.add_argument("--netG", default=None, metavar="NAME",
                   help="the official model's --netG: pix2pix unet_256 (all published pix2pix models) or unet_128, "
                        "required; cyclegan resnet_9blocks (the default: all published CycleGAN models) or "
                        "resnet_6blocks")
    p.add_argument("--task", choices=("facades", "aligned", "colorize", "unpaired"), default=None,
                   help="pix2pix, required: facades: label map -> photo (Facades tab); aligned: any other A|B model "
                        "(`translate`); colorize: an official colorization model (L -> ab). unpaired: a CycleGAN "
                        "(the same as --model cyclegan)")
    p.add_argument("--direction", choices=("AtoB", "BtoA"), default=None,
                   help="pix2pix: the direction it was trained with, used by `test` on A|B data (default: BtoA for "
                        "facades, else AtoB). cyclegan: AtoB (default) keeps the file's own direction as A -> B; "
                        "BtoA stores it as a CycleGAN's B -> A generator F (zebra2horse.pth beside data whose "
                        "trainA/ is horses), as `export --direction BtoA` does; with --reverse PTH is A -> B")
    p.add_argument("--ngf", type=int, default=64, help="the official model's generator width")
    p.add_argument("--out", required=True, help="output .safetensors file, e.g. checkpoints/NAME.safetensors")
    p.add_argument("--dtype", choices=EXPORT_DTYPE_NAMES, default="fp16", help="weight precision")
    p.add_argument("--no-dropout", action="store_true",
                   help="the model was trained with the official --no_dropout (the file cannot say: dropout "
                        "layers hold no weights); without this flag a pix2pix model runs with dropout noise. A "
                        "CycleGAN model is always imported without dropout")
    p.set_defaults(handler=cmd_import_official)
