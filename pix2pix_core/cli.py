"""Command line: `pix2pix` (or `python -m pix2pix_core`) `{train,test,translate,export,train-segmenter,data} ...`.

User mistakes (missing folder, empty dataset, wrong checkpoint, odd image) print one line and exit 2.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import threading
import warnings
from pathlib import Path
from typing import Optional, Sequence

from .config import (AUGMENTS, COLOUR_LOSSES, COLOUR_UPSAMPLES, CYCLEGAN_DEFAULTS, DISCRIMINATORS, GAN_MODES,
                     GENERATORS, MODELS, NORMS, PRECISIONS, RECIPES, SETTING_TYPES, TASKS, TrainConfig,
                     recipe_settings)
from .cli_tools import HelpFormatter, thread_count
from .errors import Pix2PixError

# Settings a task brings besides TrainConfig's defaults (its direction comes from TrainConfig itself:
# config.TASK_DIRECTIONS, so Python and the command line train the same direction)
TASK_DEFAULTS = {
    "facades": {},
    "colorize": {},
    "aligned": {},
    "paired": {},
    "unpaired": CYCLEGAN_DEFAULTS,  # trainA/ and trainB/: CycleGAN with its official defaults
}
DEFAULT_TASK = "facades"


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train a pix2pix model (or a CycleGAN: --model cyclegan --task unpaired)",
                       description="Train G and D with cGAN + lambda*L1 (pix2pix; defaults follow the paper, but "
                                   "for --task facades: --recipe studio, an unconditional D), or "
                                   "a CycleGAN's two generators and two discriminators on unpaired collections "
                                   "(--model cyclegan --task unpaired; the official defaults).",
                       formatter_class=HelpFormatter)  # each option's help names TrainConfig's default
    p.add_argument("--task", choices=TASKS, default=None,  # None: not typed (a --resume compares what was)
                   help="facades: aligned A|B label->photo; colorize: photo folder, L->ab; aligned: A|B images; "
                        "paired: A/ and B/ folders; unpaired: trainA/ and trainB/ folders (CycleGAN) "
                        f"(default {DEFAULT_TASK}; with --resume, the run's own)")
    p.add_argument("--model", choices=MODELS, default=None,
                   help="pix2pix (paired tasks) or cyclegan (task unpaired; the default there)")
    p.add_argument("--data", required=True, help="dataset folder (uses its train/ split when present)")
    p.add_argument("--out", required=True, help="run folder for checkpoints, samples and losses.csv")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its latest checkpoint, with its own settings; of those, "
                        "only the schedule's length, the logging, saving and collapse intervals, --device, "
                        "--precision, --no-channels-last, --no-test-dropout, --data's path and the cache may be "
                        "given new values "
                        "(and the collapse remedies --diff-augment, --d-lr-factor)")
    p.add_argument("--init-from", help="start the generator from this checkpoint (fine-tuning; a cyclegan run "
                   "starts G and F from a CycleGAN checkpoint or export, whichever it holds). With --resume it is "
                   "not loaded again (a resumed run keeps its weights): the model the run started from is "
                   "accepted, any other (or any, for a run trained from scratch) refused")
    defaults = TrainConfig()
    options = [
        ("--epochs", int, "epochs at constant learning rate"),
        ("--epochs-decay", int, "epochs of linear decay to zero"),
        ("--max-steps", int, "stop after this many steps"),
        ("--batch-size", int, "images per step"),
        ("--lr", float, "Adam learning rate"),
        ("--d-lr-factor", float, "D's learning rate as a multiple of G's (below 1 slows a D that wins)"),
        ("--beta1", float, "Adam beta1"),
        ("--lambda-l1", float, "weight of the L1 term (0 = cGAN only)"),
        ("--lambda-cycle", float, "CycleGAN: weight of the cycle-consistency L1"),
        ("--lambda-identity", float, "CycleGAN: identity L1, as a fraction of --lambda-cycle"),
        ("--pool-size", int, "CycleGAN: generated images kept for the discriminators"),
        ("--ngf", int, "generator width"),
        ("--ndf", int, "discriminator width"),
        ("--n-layers-d", int, "PatchGAN depth for --netD n_layers"),
        ("--load-size", int, "resize to this before the random crop"),
        ("--crop-size", int, "random crop size (the network's input)"),
        ("--max-images", int, "use at most this many training images, spread evenly over the file-name order"),
        ("--memory-budget-mb", int, "decoded datasets above this many MB train from the disk cache (0 = always)"),
        ("--seed", int, "random seed"),
        ("--sample-every", int, "steps between sample grids (0 = none)"),
        ("--save-every", int, "epochs between kept checkpoints (0 = only latest)"),
        ("--checkpoint-every-steps", int, "also refresh latest every N steps"),
        ("--log-every", int, "steps between loss records"),
        ("--collapse-steps", int, "stop when D's real and fake losses both average below 0.02 over this many "
                                  "steps (the GAN collapsed; a cyclegan run: either D; 0 = never)"),
        ("--num-d", int, "PatchGAN scales (pix2pixHD multi-scale D)"),
        ("--lambda-feat", float, "weight of D feature matching (pix2pixHD: 10)"),
        ("--ema-decay", float, "moving average of G's weights for inference (0 = off)"),
        ("--label-warp", float, "pixels of random smooth warp of input label maps"),
        ("--lambda-class", float, "colorize, --colour-loss classification: weight of the rebalanced cross-entropy"),
        ("--colour-temperature", float, "colorize, --colour-loss classification: annealed-mean temperature"),
    ]
    for flag, kind, text in options:
        field = flag[2:].replace("-", "_").replace("n_layers_d", "n_layers_D").replace("num_d", "num_D")
        default = getattr(defaults, field)
        p.add_argument(flag, type=kind, dest=field, default=None,
                       help=f"{text} (default {'none' if default is None else default})")
    unpaired = CYCLEGAN_DEFAULTS  # what --task unpaired trains with instead, said beside each default
    p.add_argument("--netG", choices=GENERATORS, default=None,
                   help=f"generator (default unet_256; task unpaired: {unpaired['netG']})")
    p.add_argument("--netD", choices=DISCRIMINATORS, default=None, help="discriminator (default basic = 70x70)")
    p.add_argument("--gan-mode", dest="gan_mode", choices=GAN_MODES, default=None,
                   help=f"default vanilla; task unpaired: {unpaired['gan_mode']}")
    p.add_argument("--colour-loss", dest="colour_loss", choices=COLOUR_LOSSES, default=None,
                   help="colorize: l1 regresses ab; l1_rebalanced weighs each pixel's L1 by the rarity of its true "
                        "colour; classification predicts ab bins with a class-rebalanced cross-entropy (Zhang et al. "
                        "2016), read out by the annealed mean (default l1)")
    p.add_argument("--colour-upsample", dest="colour_upsample", choices=COLOUR_UPSAMPLES, default=None,
                   help="colorize, --colour-loss classification: bring the 1/4-resolution ab to full size bilinearly, "
                        "or guided by the input lightness (colour edges follow lightness edges) (default bilinear)")
    p.add_argument("--diff-augment", dest="diff_augment", default=None, metavar="LIST",
                   help=f"DiffAugment on D's inputs: comma list of {', '.join(AUGMENTS)} (default none)")
    p.add_argument("--spectral-norm", dest="spectral_norm", action="store_const", const=True, default=None,
                   help="spectral norm on D's convolutions (and no norm layers in D)")
    p.add_argument("--recipe", choices=tuple(RECIPES), default=None,
                   help="a named set of the settings above, applied before the explicit flags (default: studio "
                        "for --task facades, paper otherwise): "
                        + "; ".join(f"{name} = {values or 'the paper (Isola et al. 2017)'}" for name, values in RECIPES.items()))
    p.add_argument("--norm", choices=NORMS, default=None, help=f"default batch; task unpaired: {unpaired['norm']}")
    p.add_argument("--direction", choices=("AtoB", "BtoA"), default=None,
                   help="which half of an aligned image (or which of A/, B/) is the input (default: BtoA for "
                        "facades, label -> photo; AtoB for aligned and paired; task unpaired: AtoB only, a CycleGAN "
                        "learns both ways)")
    p.add_argument("--precision", choices=PRECISIONS, default=None, help="default auto (bf16 autocast on CPU/CUDA)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps (default auto)")
    p.add_argument("--no-dropout", dest="dropout", action="store_const", const=False, default=None,
                   help="no dropout in G (task unpaired: always off)")
    p.add_argument("--no-test-dropout", dest="test_dropout", action="store_const", const=False, default=None,
                   help="translate with dropout off (trained with it on)")
    p.add_argument("--no-flip", dest="flip", action="store_const", const=False, default=None,
                   help="no random mirroring in the training jitter (for data whose left and right differ)")
    p.add_argument("--no-gan", dest="use_gan", action="store_const", const=False, default=None,
                   help="L1 only (ablation)")
    p.add_argument("--unconditional-d", dest="conditional_D", action="store_const", const=False, default=None,
                   help="D sees the output only (ablation)")
    p.add_argument("--no-channels-last", dest="channels_last", action="store_const", const=False, default=None,
                   help="train in the default NCHW memory layout instead of channels_last (the fast layout for "
                        "CUDA's tensor cores; about the same speed on a CPU)")
    p.add_argument("--sync-bn", dest="sync_bn", action="store_const", const=True, default=None,
                   help="SyncBatchNorm under torchrun")
    p.add_argument("--cache-dir", dest="cache_dir", default=None,
                   help="disk cache for large datasets (default $PIX2PIX_CACHE, else ~/.cache/pix2pix_studio)")
    p.add_argument("--threads", type=thread_count, default=None, help="CPU threads for torch (default: all cores)")


def _config_from_args(args) -> TrainConfig:
    return _config_and_changes(args)[0]


def _config_and_changes(args) -> tuple[TrainConfig, list[str]]:
    """The run's config, and on --resume the settings given anew ("epochs 100 -> 150"; resume_settings
    refuses any that would change what the run learns). Every option's default is None, so what is not None
    was typed; a typed --recipe counts as typing the settings it decides."""
    from .train import resume_settings

    explicit = {k: v for k, v in vars(args).items()
                if v is not None and k in SETTING_TYPES and k not in ("data", "out", "task")}
    if args.resume:
        given = {**_recipe_given(args), **explicit, "data": args.data, "out": args.out}
        if args.task is not None:
            given["task"] = args.task
        return resume_settings(args.out, given)
    task = args.task or DEFAULT_TASK
    values = {**TASK_DEFAULTS[task], **recipe_settings(task, args.recipe), **explicit,
              "task": task, "data": args.data, "out": args.out}
    if values.get("model") == "cyclegan" and "lambda_l1" in explicit:  # it was ignored without a word
        raise Pix2PixError("cyclegan has no --lambda-l1 (pix2pix's L1 to a target): its L1 terms are weighted by "
                           "--lambda-cycle and --lambda-identity")
    return TrainConfig(**values).validate(), []


def _recipe_given(args) -> dict:
    """The settings a --recipe typed on --resume decides (every field any recipe sets), as a new run of the
    run's task would have them: `--recipe paper` on a studio run asks for a conditional D."""
    if args.recipe is None:
        return {}
    from .train import resume_config

    task = args.task or resume_config(args.out).task
    decided = {name for recipe in RECIPES.values() for name in recipe}
    fresh = TrainConfig(**{**TASK_DEFAULTS[task], **recipe_settings(task, args.recipe), "task": task})
    return {name: getattr(fresh, name) for name in decided}


def cmd_train(args) -> int:
    import torch
    from .progress import TqdmReporter
    from .train import Trainer, resume_start_note

    if args.threads:
        torch.set_num_threads(args.threads)
    config, changed = _config_and_changes(args)
    if not Path(config.data).is_dir():
        raise Pix2PixError(f"data folder not found: {config.data}")
    warn_if_memory_short(config)
    note = resume_start_note(config.out, args.init_from) if args.resume else ""  # or a refusal of --init-from
    trainer = Trainer(config, callbacks=[], resume=args.resume, init_generator=args.init_from)
    if os.environ.get("RANK", "0") == "0":
        print(_run_summary(config, trainer.folder.latest if args.resume else None,
                           None if args.resume else args.init_from, changed, note), flush=True)
    reporter = TqdmReporter()
    trainer.callbacks.append(reporter)
    latest = trainer.folder.latest
    try:
        with _first_ctrl_c_stops(trainer) as interrupted:
            result = trainer.run()
    except KeyboardInterrupt:
        reporter.close()  # before the message, or the bar is drawn again under it
        print("interrupted: " + (f"resume from its last checkpoint with --resume --out {config.out}" if latest.exists()
                                 else "no checkpoint was written yet; start again"), file=sys.stderr)
        return 130
    finally:
        reporter.close()
    if result.reason in ("diverged", "collapsed"):
        print_error(result.message)
        return 1
    if os.environ.get("RANK", "0") == "0":  # under torchrun only rank 0 writes, so only it reports
        checkpoint = result.checkpoint or (latest if latest.exists() else None)  # a finished run resumed: no new save
        print(f"{result.reason} at step {result.step}, epoch {result.epoch}; "
              + (f"checkpoint: {checkpoint}" if checkpoint else "nothing saved (no training step ran)"))
        if result.reason == "stopped" and checkpoint is not None:
            print(f"resume with: the same command and --resume (run folder {config.out})")
    return 130 if interrupted else 0  # a Ctrl-C'd run did not finish: scripts (scripts.ablate) must see that


def _run_summary(config: TrainConfig, resumed_from: Optional[Path], init_from: Optional[str] = None,
                 changed: Sequence[str] = (), note: str = "") -> str:
    """One line before the first step: what is about to train, so a wrong --task or size shows at once (and
    what a fine-tune loads: a CycleGAN export may hold one of its two generators; what a resume was given
    anew, and `note`: what became of its --init-from)."""
    import json

    from .checkpoint import fine_tune_plan, read_header

    where = ""
    if resumed_from is not None and resumed_from.exists():
        step = json.loads(read_header(resumed_from).get("state", "{}")).get("step", "?")
        where = (f"; resuming from step {step}" + (f" with {', '.join(changed)}" if changed else "")
                 + (f" ({note})" if note else ""))
    elif init_from:
        where = f"; fine-tuning: {fine_tune_plan(init_from, config.model)}"
    schedule = _epochs_line(config) + (f", at most {_counted(config.max_steps, 'step')}" if config.max_steps else "")
    direction = "" if config.task == "colorize" else f" ({config.direction})"  # a colorizer reads photos, not halves
    return (f"{config.model} {config.task}{direction} from {config.data}: {config.netG} ngf {config.ngf}, "
            f"{_judge_line(config)}, {config.crop_size} px crops, batch {config.batch_size}, {schedule}"
            f"{where} -> {config.out}")


def _counted(count: int, noun: str) -> str:
    """'1 step', '2 steps': the run line said 'at most 1 steps'."""
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _epochs_line(config: TrainConfig) -> str:
    """'55 + 55 epochs' (constant LR, then its decay); one part alone when the other is 0, so a 1-epoch run
    reads '1 epoch', not '1 + 0 epochs'."""
    if not config.epochs_decay:
        return _counted(config.epochs, "epoch")
    if not config.epochs:
        return _counted(config.epochs_decay, "epoch") + " of LR decay"
    return f"{config.epochs} + {config.epochs_decay} epochs"


def _judge_line(config: TrainConfig) -> str:
    """The discriminator the run trains, or 'no D' with --no-gan (use_gan off): D is then never run or updated."""
    if not config.use_gan:
        return "no D (no GAN loss)"
    return (f"{config.netD} D" + (f" x {config.num_D} scales" if config.num_D > 1 else "")
            + (" with spectral norm" if config.spectral_norm else "") + f" ndf {config.ndf}")


@contextlib.contextmanager
def _first_ctrl_c_stops(trainer):
    """The first Ctrl-C ends the run after its current step with a checkpoint (as Stop in the app; the exit
    status is still 130, the run did not finish); a second one quits at once. Only in a plain process:
    under torchrun every rank gets the signal, and ranks that stop at different steps would wait on each
    other for ever."""
    import signal

    asked: list[bool] = []  # yielded: true once a Ctrl-C stopped the run
    if os.environ.get("WORLD_SIZE", "1") != "1" or threading.current_thread() is not threading.main_thread():
        yield asked
        return

    def on_interrupt(signum, frame):
        if asked:
            raise KeyboardInterrupt
        asked.append(True)
        trainer.stop()
        # a run still loading its data has no step to finish: it stops at once, with nothing to save
        print("\nstopping after the current step, with a checkpoint (while the data loads: at once, nothing saved); "
              "Ctrl-C again to quit at once", file=sys.stderr)

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        yield asked
    finally:
        signal.signal(signal.SIGINT, previous)


def warn_if_memory_short(config: TrainConfig) -> None:
    """The CLI trusts its user: a run estimated above the available memory is warned about, not refused."""
    from .resources import (available_memory, count_training_images, estimate_training_memory, gb,
                            largest_training_image_pixels)

    estimate = estimate_training_memory(config, count_training_images(config), largest_training_image_pixels(config))
    available = available_memory()
    if available and estimate.total > available:
        print(f"warning: this run may need about {estimate.describe()}, more than the {gb(available)} of memory "
              f"available now; it may be killed. Lower --batch-size, --ngf or --max-images if it is.",
              file=sys.stderr)


def print_error(message) -> None:
    """Write `error: message` and its newline in one call: under torchrun every rank reports to the same
    stderr, and print() writes the text and the newline separately, so with unbuffered output
    (PYTHONUNBUFFERED=1) two ranks' lines could run into one."""
    sys.stderr.write(f"error: {message}\n")
    sys.stderr.flush()


def build_parser() -> argparse.ArgumentParser:
    return _parser_and_commands()[0]


def command_parsers() -> dict[str, argparse.ArgumentParser]:
    """Each subcommand's parser by its name, in --help's order: what a check of every command's options walks."""
    return dict(_parser_and_commands()[1].choices)


def _parser_and_commands():
    """The command line's parser, and the subcommands' action `add_subparsers` returned (its choices: the
    subcommands' parsers by name)."""
    from . import __version__

    # `pix2pix ...` once installed (the console script), `python -m pix2pix_core ...` from a clone
    prog = "pix2pix" if Path(sys.argv[0]).name == "pix2pix" else "python -m pix2pix_core"
    about = ("Pix2Pix Studio: paired image-to-image translation (pix2pix, Isola et al.) and unpaired "
             "(CycleGAN, Zhu et al.)")
    parser = argparse.ArgumentParser(prog=prog, description=about)
    parser.add_argument("--version", action="version", version=f"pix2pix-studio {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_train(sub)
    from . import cli_tools
    cli_tools.add_commands(sub)
    from . import download
    download.add_command(sub, HelpFormatter)
    return parser, sub


def _one_line_warning(others):
    """A showwarning that prints our warnings (UserWarning: skipped images, data that looks like another task)
    as a user reads them, without a source path, and hands any other kind to `others` as before."""
    def show(message, category, filename, lineno, file=None, line=None) -> None:
        if issubclass(category, UserWarning):
            print(f"warning: {message}", file=file or sys.stderr)
        else:
            others(message, category, filename, lineno, file, line)
    return show


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The command line. A Ctrl-C outside `train`'s steps (which stop after the step and say how to resume) was
    a traceback, from the imports on: one line and status 130 now; what the commands write is written whole
    or not at all (and `data` resumes its download), so running the command again finishes it."""
    try:
        return _parse_and_run(argv)
    except KeyboardInterrupt:
        sys.stderr.write("\ninterrupted: run the same command again to finish\n")
        return 130


def _parse_and_run(argv: Optional[Sequence[str]]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    with warnings.catch_warnings():  # this call's warning display only: main() also runs inside other programs
        warnings.filterwarnings("default", category=UserWarning)  # ours: skipped images, data of another task
        warnings.filterwarnings("ignore", message="Image size .* could be decompression bomb")  # PIL's: our
        # own size check says it in one line (matched by text: importing PIL here would slow down --help)
        warnings.showwarning = _one_line_warning(warnings.showwarning)
        return _run(args)


def _run(args) -> int:
    try:
        return args.handler(args) if hasattr(args, "handler") else cmd_train(args)
    except Pix2PixError as exc:
        print_error(exc)
        return 2
