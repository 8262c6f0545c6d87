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
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Mapping, Optional

COLLAPSE_LOSS = 0.02  # D_real and D_fake window means below this = D has won (balanced training: about 0.1-0.7)
MIN_RECORDS = 10  # a verdict needs at least this many logged steps: with a sparse --log-every the window stretches
REMEDY_AUGMENTS = "translation,cutout"  # the DiffAugment to start again or resume with (measured: the docstring above)
REMEDY = f"--diff-augment {REMEDY_AUGMENTS}"


@dataclass
class CollapseWatch:
    """Fed every logged step's losses; says when D_real and D_fake have both averaged below
    `threshold` over the last `window_steps` steps (over the last MIN_RECORDS logged steps, when those
    span more: one batch's losses decide nothing). 0 steps = never. Losses without D_real and D_fake
    (CycleGAN's) are ignored."""

    window_steps: int
    threshold: float = COLLAPSE_LOSS
    _records: deque = field(default_factory=deque, repr=False)
    _first_step: Optional[int] = field(default=None, repr=False)

    @property
    def window_start(self) -> Optional[int]:
        """The first step of the window the last update averaged (None before any record)."""
        return self._records[0][0] if self._records else None

    def update(self, step: int, losses: Mapping[str, float]) -> Optional[str]:
        """Record one logged step; a message for the user once D has won, else None."""
        if not self.window_steps or "D_real" not in losses or "D_fake" not in losses:
            return None
        if self._first_step is None:
            self._first_step = step
        self._records.append((step, float(losses["D_real"]), float(losses["D_fake"])))
        while len(self._records) > MIN_RECORDS and self._records[0][0] <= step - self.window_steps:
            self._records.popleft()
        if step - self._first_step < self.window_steps or len(self._records) < MIN_RECORDS:
            return None  # not a whole window seen yet (a new run, or just resumed)
        real = sum(r for _, r, _ in self._records) / len(self._records)
        fake = sum(f for _, _, f in self._records) / len(self._records)
        if max(real, fake) >= self.threshold:
            return None
        return (f"the GAN collapsed: the discriminator has won, its real and fake losses averaged {real:.3f} "
                f"and {fake:.3f} over steps {self._records[0][0]}-{step} (balanced training keeps them near "
                f"0.1-0.7), so the generator no longer learns what real images look like and its outputs turn "
                f"to noise; look at the latest samples. Start again with another seed and DiffAugment on D's inputs "
                f"({REMEDY}) or fewer --num-d scales; a slower D (--d-lr-factor 0.5) only "
                f"delayed it in the runs measured (--collapse-steps 0 turns this check off)")
