"""Pix2Pix Studio's Gradio app: one module per tab, plus `state` for models and the training job.

Start it with `pix2pix-studio`, `python -m demo` or `python app.py` (all three run `demo.server.main`).
"""

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no analytics, no version check: nothing leaves

__all__ = ["build_app", "launch_options", "queue_options"]


def __getattr__(name: str):
    """`demo.build_app` and the others come from demo.app when first asked for: importing the package (as
    `pix2pix-studio --help` does, for demo.server) loaded gradio and torch, 6-15 s before the help showed."""
    if name in __all__:
        from . import app

        return getattr(app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
