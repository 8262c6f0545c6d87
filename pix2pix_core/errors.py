"""The one exception type for user mistakes: the CLI and the app show its message as one line."""


class Pix2PixError(Exception):
    """A problem the user can fix (bad path, odd image, wrong checkpoint); never a bug."""


class ImageError(Pix2PixError, ValueError):
    """An image that cannot be read or is refused (corrupt, too large, not an image)."""


class CheckpointError(Pix2PixError):
    """A checkpoint that is not a pix2pix safetensors file, or does not match its config."""


class LoadingStopped(Pix2PixError):
    """Loading a dataset was stopped on request (not a failure: the trainer reports the run as stopped)."""


def check_all(checks: list[tuple[bool, str]]) -> None:
    """Raise a Pix2PixError with the message of the first failed (ok, message) check: config validation."""
    for ok, message in checks:
        if not ok:
            raise Pix2PixError(message)
