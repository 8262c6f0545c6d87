"""Pix2Pix Studio core: paired image-to-image translation with conditional GANs (Isola et al. 2017)."""

from .config import TrainConfig
from .errors import CheckpointError, ImageError, Pix2PixError

__all__ = ["TrainConfig", "Pix2PixError", "ImageError", "CheckpointError"]
__version__ = "0.1.0"
