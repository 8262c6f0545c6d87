"""Pix2Pix Studio's Gradio app: one module per tab, plus `state` for models and the training job.

Start it with `pix2pix-studio`, `python -m demo` or `python app.py` (all three run `demo.server.main`).
"""

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no analytics, no version check: nothing leaves

from .app import build_app, launch_options, queue_options  # noqa: E402  (after the environment above)

__all__ = ["build_app", "launch_options", "queue_options"]
