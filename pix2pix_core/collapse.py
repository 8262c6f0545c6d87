"""Spotting a collapsed GAN while it trains: the discriminator has won.

When D tells real from generated images apart with near certainty for a long stretch, both its losses
sit near 0, G's adversarial gradient no longer says what real images look like, and G drifts into
noise (for the food colorizer: rainbow speckle over every photo). Nothing goes NaN, so the divergence
check never fires; the run would spend the rest of its schedule producing a useless model.

Measured on the 42 losses.csv files this project kept (facades and food; vanilla and hinge losses;
one to three D scales, with and without feature matching), 1,000-step windows: the four runs that
collapsed would have been stopped at steps 2,290, 3,420, 3,770 and 4,300 (of 5,200-8,768; their D
losses then stayed near 0.000 to the end); no healthy run went below 0.063, three times the threshold
(most food runs stayed above 0.5). Nor did the app's Quick demo preset on 100 and on 10 facades pairs
(2,000 and 3,000 steps at batch 1, where a D could learn a small training set by heart): 0.26 and 0.34.

What to advise was measured on a GPU with the two-scale D and feature matching, the setting that
collapsed: on facades with DiffAugment it held (`docs/ablation.md` section 3); on food, fine-tuning the
bundled colorizer, three runs without it collapsed (D at half G's rate too, only later: from steps 1,700
and 2,300 against 1,100) and the run with it held through all 6,960 steps (`checkpoints/food_colorize.md`).

CycleGAN's two discriminators are watched by the same rule (either one winning stops the run); its
threshold and remedy come from the pix2pix runs above, not from measured CycleGAN runs.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Mapping, Optional

COLLAPSE_LOSS = 0.02  # D_real and D_fake window means below this = D has won (balanced training: about 0.1-0.7)
MIN_RECORDS = 10  # a verdict needs at least this many logged steps: with a sparse --log-every the window stretches
REMEDY_AUGMENTS = "translation,cutout"  # the DiffAugment to start again or resume with (measured: the docstring above)
REMEDY = f"--diff-augment {REMEDY_AUGMENTS}"
# CycleGAN has no DiffAugment; a slower D is the setting it has (not measured on CycleGAN runs yet)
CYCLEGAN_REMEDY = "--d-lr-factor 0.5"
PIX2PIX_LOSSES = ("D_real", "D_fake")  # pix2pix's one D: its real and fake losses, logged apart
# CycleGAN's two Ds (D_A judges A pictures, so trains F: B -> A; D_B trains G: A -> B), each logged as the mean
# of its real and fake losses: both (never negative) are below the threshold when that mean is below half of it
CYCLEGAN_LOSSES = ("D_A", "D_B")
TRAINS = {"D_A": "F (B -> A)", "D_B": "G (A -> B)"}


def watched_losses(losses: Mapping[str, float]) -> tuple[str, ...]:
    """The D losses the watch reads from one logged step's: pix2pix's, CycleGAN's, or none (nothing to watch)."""
    for names in (PIX2PIX_LOSSES, CYCLEGAN_LOSSES):
        if all(name in losses for name in names):
            return names
    return ()


@dataclass
class CollapseWatch:
    """Fed every logged step's losses; says when D_real and D_fake have both averaged below
    `threshold` over the last `window_steps` steps (over the last MIN_RECORDS logged steps, when those
    span more: one batch's losses decide nothing). 0 steps = never. For CycleGAN's losses, when D_A or
    D_B (each the mean of that D's real and fake losses) has averaged below half the threshold: its real
    and fake losses are then both below it, as pix2pix's rule asks. Losses with neither are ignored."""

    window_steps: int
    threshold: float = COLLAPSE_LOSS
    _records: deque = field(default_factory=deque, repr=False)
    _first_step: Optional[int] = field(default=None, repr=False)
    _watched: tuple[str, ...] = field(default=(), repr=False)

    @property
    def window_start(self) -> Optional[int]:
        """The first step of the window the last update averaged (None before any record)."""
        return self._records[0][0] if self._records else None

    @property
    def remedy(self) -> str:
        """The option a collapsed run's message advises resuming with: the method's own."""
        return CYCLEGAN_REMEDY if self._watched == CYCLEGAN_LOSSES else REMEDY

    def update(self, step: int, losses: Mapping[str, float]) -> Optional[str]:
        """Record one logged step; a message for the user once D has won, else None."""
        names = watched_losses(losses)
        if not self.window_steps or not names:
            return None
        self._watched = names
        if self._first_step is None:
            self._first_step = step
        self._records.append((step, *(float(losses[name]) for name in names)))
        while len(self._records) > MIN_RECORDS and self._records[0][0] <= step - self.window_steps:
            self._records.popleft()
        if step - self._first_step < self.window_steps or len(self._records) < MIN_RECORDS:
            return None  # not a whole window seen yet (a new run, or just resumed)
        means = [sum(record[i] for record in self._records) / len(self._records) for i in (1, 2)]
        steps = f"steps {self._records[0][0]}-{step}"
        if names == PIX2PIX_LOSSES:
            return _pix2pix_verdict(*means, steps, self.threshold)
        return _cyclegan_verdict(dict(zip(names, means)), steps, self.threshold)


def _pix2pix_verdict(real: float, fake: float, steps: str, threshold: float) -> Optional[str]:
    if max(real, fake) >= threshold:
        return None
    return (f"the GAN collapsed: the discriminator has won, its real and fake losses averaged {real:.3f} "
            f"and {fake:.3f} over {steps} (balanced training keeps them near "
            f"0.1-0.7), so the generator no longer learns what real images look like and its outputs turn "
            f"to noise; look at the latest samples. Start again with another seed and DiffAugment on D's inputs "
            f"({REMEDY}) or fewer --num-d scales; a slower D (--d-lr-factor 0.5) only "
            f"delayed it in the runs measured (--collapse-steps 0 turns this check off)")


def _cyclegan_verdict(means: dict[str, float], steps: str, threshold: float) -> Optional[str]:
    won = [name for name, mean in means.items() if mean < threshold / 2]
    if not won:
        return None
    one = len(won) == 1
    whose = (f"the discriminator {won[0]} has won, its loss (the mean of its real and fake losses)" if one else
             f"the discriminators {' and '.join(won)} have won, their losses (each the mean of its real and fake "
             "losses)")
    generators = " and ".join(TRAINS[name] for name in won)
    return (f"the GAN collapsed: {whose} averaged {' and '.join(f'{means[name]:.3f}' for name in won)} over "
            f"{steps} (below {threshold / 2:.3f}: real and fake both near 0), so {generators} no longer "
            f"{'learns' if one else 'learn'} what real pictures look like and {'its' if one else 'their'} outputs "
            f"turn to noise; look at the latest samples. Start again with another seed or a slower D "
            f"({CYCLEGAN_REMEDY}; DiffAugment is for pix2pix runs) (--collapse-steps 0 turns this check off)")
