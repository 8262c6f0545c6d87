"""Pix2Pix Studio's command line: `pix2pix-studio` (or `python -m demo`, `python app.py`) serves the app on
http://127.0.0.1:7860.

Thin on purpose: command-line flags here, the UI in the other `demo` modules, the models in `pix2pix_core`.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:  # not imported at start: `--help` answers before gradio and torch load
    from .state import ModelRegistry

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no analytics, no version check: nothing leaves


def project_root() -> Path:
    """The source checkout holding this package (a clone, or an editable install of it), where the bundled
    checkpoints/ are; for a package installed elsewhere, the current folder."""
    from pix2pix_core.bundled import source_checkout

    return source_checkout() or Path.cwd()


def models_note(folder: Path, registry: Optional[ModelRegistry] = None) -> str:
    """A line for the console when the pickers would be empty: which folder was searched and where the bundled
    models are (an installed wheel starts without them), instead of only "no facades model found". What counts
    is what the app's model registry lists: a folder holding only a segmenter (or files that are no pix2pix
    checkpoint) leaves the pickers as empty as no folder at all, and the note names those files. `registry`: the
    app's own (its folders include the models trained in the app; scanned once), else one of `folder`."""
    from pix2pix_core.bundled import WHERE_TO_GET_THEM

    from .messages import shorten
    from .state import ModelRegistry

    if (registry or ModelRegistry([folder], device="cpu")).names_of_all():
        return ""
    others = sorted(path.name for path in folder.glob("*.safetensors")) if folder.is_dir() else []
    what = "not a pix2pix generator" if len(others) == 1 else "not pix2pix generators"
    skipped = f" ({shorten(', '.join(others), 200)}: {what})" if others else ""
    return (f"note: no models in {folder}{skipped}; {WHERE_TO_GET_THEM} (pass --checkpoints DIR), or train one in "
            "the Train tab")


def parse_args(argv=None) -> argparse.Namespace:
    from pix2pix_core import __version__

    root = project_root()
    parser = argparse.ArgumentParser(prog="pix2pix-studio",
                                     description="Pix2Pix Studio: draw facades, colorize photos, train models.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 exposes it)")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--share", action="store_true", help="also open a public gradio.live link (off by default)")
    parser.add_argument("--checkpoints", type=Path, default=None,
                        help="folder of model .safetensors files for the pickers (default: checkpoints/ of the "
                             "source checkout, else of the current folder)")
    parser.add_argument("--data-root", type=Path, default=root / "data",
                        help="training dataset folders typed in the UI must be inside this folder "
                             "(get the data with `pix2pix data facades --out data/`)")
    parser.add_argument("--runs-dir", type=Path, default=root / "runs" / "app",
                        help="where training runs, uploaded datasets and trained models are written")
    parser.add_argument("--runs-max-gb", type=float, default=5.0,
                        help="cap on the runs folder; the oldest app runs are removed first (default 5)")
    parser.add_argument("--train-memory-gb", type=float, default=None,
                        help="memory a training run may use (default: half the memory available at its start)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or mps (for inference)")
    parser.add_argument("--torch-threads", type=int, default=0, help="CPU threads for torch (0 = torch's default)")
    args = parser.parse_args(argv)
    if args.checkpoints is None:
        args.checkpoints = root / "checkpoints"
    elif not args.checkpoints.is_dir():  # a typo would start an app with empty pickers and no word why
        parser.error(f"--checkpoints {args.checkpoints}: no such folder")
    if args.torch_threads < 0:  # torch refused it with a traceback at start
        parser.error(f"--torch-threads {args.torch_threads}: give a number of threads, or 0 for torch's default")
    if args.device != "auto":  # build_app refuses it too; here it is a usage error before any folder is made
        from pix2pix_core.distributed import pick_device
        from pix2pix_core.errors import Pix2PixError

        try:
            pick_device(args.device)
        except Pix2PixError as exc:
            parser.error(str(exc))
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"WARNING: listening on {args.host}: anyone who can reach this machine can use the app, "
              f"run training and upload files.", file=sys.stderr)
    if args.share:
        print("WARNING: --share publishes the app on a public gradio.live address.", file=sys.stderr)
    if args.torch_threads:
        import torch

        torch.set_num_threads(args.torch_threads)
    from .app import build_app, launch_options, queue_options

    args.data_root.mkdir(parents=True, exist_ok=True)
    blocks = build_app(args.checkpoints, args.data_root, args.runs_dir, device=args.device,
                       runs_max_bytes=int(args.runs_max_gb * 1e9),
                       train_memory_bytes=int(args.train_memory_gb * 1e9) if args.train_memory_gb else None)
    if note := models_note(args.checkpoints, blocks.app_state.models):
        print(note, file=sys.stderr)
    blocks.queue(**queue_options())
    signal.signal(signal.SIGTERM, _stop_as_ctrl_c)
    try:
        blocks.launch(server_name=args.host, server_port=args.port, share=args.share, show_error=False,
                      **launch_options(blocks.app_state))
    finally:
        _delete_gradio_cache(blocks)



def _delete_gradio_cache(blocks) -> None:
    """Delete the uploads and results Gradio cached for this app, as its shutdown would: Gradio waits 5 s for its
    server to stop, and it can take longer (here 6 s after an API client's three /colorize calls, even with the
    client closed; 1.6 s after none); the shutdown was then cut off before it deleted them, and they stayed in
    Gradio's cache folder for good, since a new app does not know them (3 /colorize calls and a stop: 4 files)."""
    from gradio.route_utils import delete_files_created_by_app

    # Gradio's scheduled deletion may be running at the stop; it walks copies of the lists (gradio_cache), but a
    # set changed while iterated must never turn a clean stop into a traceback
    with contextlib.suppress(RuntimeError):
        delete_files_created_by_app(blocks, None)


def _stop_as_ctrl_c(signum, frame) -> None:
    """SIGTERM (kill, systemd, docker stop) ends the app as Ctrl-C does: Gradio closes its server and the exit
    handlers run. Python's default ended the process at once, leaving the result files' folder in the temp
    folder at every such stop (402 of them on the development machine, from the tests' stops)."""
    raise KeyboardInterrupt


if __name__ == "__main__":
    main()
