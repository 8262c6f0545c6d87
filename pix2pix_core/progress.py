"""A trainer callback that shows training events as a tqdm progress bar (used by the CLI)."""

from __future__ import annotations

from typing import Optional

from tqdm import tqdm

from .train import CheckpointEvent, EpochEvent, Event, FinishedEvent, LossEvent


class TqdmReporter:
    """Progress bar with loss values, img/s and ETA; epoch and checkpoint lines above it."""

    def __init__(self, unit: str = "step"):
        self.bar: Optional[tqdm] = None
        self.unit = unit
        self.shown: set[str] = set()  # losses seen non-zero: an option that is off (G_feat, D_* without a GAN)
        #                               logs exact zeros, kept in losses.csv's columns but not in the bar

    def __call__(self, event: Event) -> None:
        if isinstance(event, LossEvent):
            if self.bar is None:
                total = round(event.step / event.progress) if event.progress > 0 else None
                self.bar = tqdm(total=total, initial=event.step - 1, unit=self.unit, dynamic_ncols=True)
            self.bar.update(event.step - self.bar.n)
            self.shown.update(name for name, value in event.losses.items() if value != 0)
            self.bar.set_postfix_str(
                " ".join(f"{k}={v:.3f}" for k, v in event.losses.items() if k in self.shown)
                + f" {event.images_per_second:.1f}img/s", refresh=False)
        elif isinstance(event, EpochEvent):
            tqdm.write(f"epoch {event.epoch} done in {event.seconds:.0f}s (lr {event.lr:.2e})")
        elif isinstance(event, CheckpointEvent) and "epoch_" in event.path.name:
            tqdm.write(f"saved {event.path}")
        elif isinstance(event, FinishedEvent):
            self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
