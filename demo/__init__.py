"""Pix2Pix Studio's Gradio app: one module per tab, plus `state` for models and the training job."""

from .app import build_app, launch_options

__all__ = ["build_app", "launch_options"]
