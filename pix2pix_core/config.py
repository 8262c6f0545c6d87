"""One typed config for a training run; it travels inside every checkpoint.

Because the config is stored with the weights, a checkpoint always rebuilds the exact
networks it was trained with: no flags are needed to load it, and the official code's
"state_dict mismatch" errors cannot happen here.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass
from typing import Any, Optional

from .errors import Pix2PixError, check_all

TASKS = ("facades", "colorize", "paired", "aligned", "unpaired")
MODELS = ("pix2pix", "cyclegan")
GENERATORS = ("unet_256", "unet_128", "resnet_9blocks", "resnet_6blocks", "encoder_decoder_256", "encoder_decoder_128")
DISCRIMINATORS = ("basic", "n_layers", "pixel", "image")
GAN_MODES = ("vanilla", "lsgan", "hinge")
COLOUR_LOSSES = ("l1", "l1_rebalanced", "classification")
COLOUR_UPSAMPLES = ("bilinear", "guided")
AUGMENTS = ("translation", "cutout")
NORMS = ("batch", "instance")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
MAX_IMAGE_SIDE = 8192  # load/crop sizes above this are typos (and a 64 GB dataset per 1000 images)
# Each task's default direction (which half or folder is the input), for TrainConfig and the CLI alike:
# facades' label map is B, so label -> photo is BtoA; other A|B and A/-B/ data reads A -> B. Colorize reads
# photos, not halves (its BtoA is the direction its configs have always stored).
TASK_DIRECTIONS = {"facades": "BtoA", "colorize": "BtoA", "aligned": "AtoB", "paired": "AtoB", "unpaired": "AtoB"}
LEGACY_DIRECTION = "BtoA"  # every task's default before TASK_DIRECTIONS: a stored config without one meant this


# what a field of each annotated type takes (int: "a whole number"), as TrainConfig.validate says it
TYPE_WORDS = {"str": "a string", "bool": "True or False", "float": "a number", "int": "a whole number",
              "Optional[int]": "a whole number or None"}  # a field of another type is not checked here
# the end of the refusals a CycleGAN config built by hand meets: past them by hand, it trained pix2pix's U-Net
OFFICIAL = (" (in Python, config.cyclegan_config(data=..., out=...) builds one with CycleGAN's official defaults: "
            "ResNet-9, instance norm, LSGAN, no dropout)")


@dataclass
class TrainConfig:
    """Every setting of a pix2pix run. Defaults follow the paper (Isola et al. 2017, sec. 3-4)."""

    # what to learn
    task: str = "facades"  # facades (aligned, label->photo), colorize (L->ab), aligned, paired (A/ and B/ folders),
    #                        unpaired (trainA/ and trainB/ folders, CycleGAN only)
    model: str = "pix2pix"  # pix2pix (paired) or cyclegan (unpaired; CYCLEGAN_DEFAULTS below)
    data: str = ""  # dataset folder (with train/ and val/ splits, or the images themselves)
    out: str = "runs/pix2pix"  # run folder: checkpoints, samples, losses.csv
    direction: str = ""  # AtoB or BtoA: which half of an A|B image (or which of A/, B/) is the input;
    #                      "" = the task's default (TASK_DIRECTIONS: BtoA for facades, label -> photo; AtoB for
    #                      aligned, paired and unpaired)

    # networks (sec. 3.2)
    netG: str = "unet_256"  # U-Net with skips; encoder_decoder_* is the no-skip ablation
    netD: str = "basic"  # basic = 70x70 PatchGAN (n_layers 3); pixel = 1x1; image = whole-image
    n_layers_D: int = 3  # used by netD=n_layers
    ngf: int = 64  # generator width (paper: 64)
    ndf: int = 64  # discriminator width (paper: 64)
    norm: str = "batch"  # the paper uses batch norm (instance norm at batch size 1)
    dropout: bool = True  # dropout in the 3 innermost decoder blocks is the paper's only noise
    test_dropout: bool = True  # keep dropout on when translating (the paper's test script); off = one calmer picture
    conditional_D: bool = True  # D sees (input, output); False is the unconditional ablation
    num_D: int = 1  # PatchGANs at 1, 1/2, 1/4 ... resolution (pix2pixHD's multi-scale D; 1 = the paper)
    spectral_norm: bool = False  # spectral norm on D's convolutions (Miyato et al. 2018), which then has no norm layers

    # objective (sec. 3.1)
    gan_mode: str = "vanilla"  # vanilla = BCE with logits; lsgan = least squares
    lambda_l1: float = 100.0  # weight of L1; 0 gives cGAN only
    use_gan: bool = True  # False gives L1 only
    lambda_feat: float = 0.0  # D feature matching (pix2pixHD, lambda 10): L1 between D's features of real and fake
    ema_decay: float = 0.0  # keep an exponential moving average of G's weights for inference (0 = off; e.g. 0.999)
    diff_augment: str = ""  # comma list of translation,cutout: the same random transform on D's whole (input, image)
    #                         pair, for real and generated alike, differentiable (Zhao et al. 2020): less D overfitting
    label_warp: float = 0.0  # pixels of smooth random displacement of input label-map edges (robust to rough drawings)
    colour_loss: str = "l1"  # colorize: l1 regresses ab; l1_rebalanced weighs each pixel's L1 by the rarity of its
    #                          true colour (the class rebalancing of Zhang et al. 2016 on a regression); classification
    #                          predicts a distribution over ab bins with that rebalanced cross-entropy (colour_bins.py)
    lambda_class: float = 1.0  # weight of that cross-entropy (colour_loss classification)
    colour_temperature: float = 0.38  # annealed-mean temperature of the readout (1 = mean, -> 0 = mode; paper 0.38)
    colour_upsample: str = "bilinear"  # how the classifier's 1/4-resolution ab reaches full size: bilinear, or
    #                                   guided by the input lightness (networks.guided_upsample)

    # CycleGAN's objective (Zhu et al. 2017, sec. 3-4); used by model=cyclegan only
    lambda_cycle: float = 10.0  # weight of the cycle-consistency L1, F(G(a)) ~ a and G(F(b)) ~ b
    lambda_identity: float = 0.5  # identity L1, G(b) ~ b, weighted lambda_identity * lambda_cycle (paper sec. 5.2)
    pool_size: int = 50  # history of generated images the discriminators also see (0 = only the newest)

    # optimisation (sec. 3.3)
    lr: float = 2e-4
    d_lr_factor: float = 1.0  # D's learning rate as a multiple of G's, on the same schedule (two time-scale update
    #                            rule, Heusel et al. 2017); below 1 slows a D that wins too easily (collapse.py)
    beta1: float = 0.5
    beta2: float = 0.999
    epochs: int = 100  # epochs at constant learning rate
    epochs_decay: int = 100  # then linear decay to 0 over this many epochs
    batch_size: int = 1
    max_steps: Optional[int] = None  # stop after this many steps (quick runs, tests)
    seed: int = 0

    # data jitter (sec. 6.2): resize to load_size, random crop crop_size, random mirror
    load_size: int = 286
    crop_size: int = 256
    flip: bool = True
    max_images: Optional[int] = None  # use at most this many training images, spread over the file-name order
    memory_budget_mb: int = 1024  # a split decoding to more than this trains from the disk cache; 0 = always
    cache_dir: str = ""  # disk cache folder; "" = $PIX2PIX_CACHE, else ~/.cache/pix2pix_studio

    # speed
    device: str = "auto"  # auto = cuda, then mps, then cpu
    precision: str = "auto"  # auto = bf16 autocast on CPU and CUDA, fp32 elsewhere
    channels_last: bool = True
    sync_bn: bool = False  # convert BatchNorm to SyncBatchNorm under torchrun

    # outputs
    log_every: int = 1  # steps between loss events (a host sync each time)
    sample_every: int = 100  # steps between sample grids
    save_every: int = 10  # epochs between kept checkpoints (besides latest)
    checkpoint_every_steps: Optional[int] = None  # also write latest every N steps
    collapse_steps: int = 1000  # stop when D's real and fake losses average below 0.02 over this many steps
    #                             (D has won, G turns to noise; for CycleGAN either D: collapse.py); 0 = never

    def __post_init__(self) -> None:
        if not self.direction:
            self.direction = TASK_DIRECTIONS.get(self.task, LEGACY_DIRECTION)
        for field in dataclasses.fields(self):
            setattr(self, field.name, self.as_declared(field.name, getattr(self, field.name)))

    @classmethod
    def as_declared(cls, name: str, value: Any) -> Any:
        """`value` for the field `name` in its declared type where Python callers hand in another (a Path for a
        folder, 32.0 for a width); any other value as it is, for `validate` to check. The declared type is the
        annotation as written (this module's annotations are postponed: "int", "Optional[int]")."""
        declared = SETTING_TYPES[name]
        if declared == "str" and isinstance(value, os.PathLike):  # else the run failed at its first save
            return os.fspath(value)  # (config.json: "PosixPath is not JSON serializable")
        if declared in ("int", "Optional[int]") and isinstance(value, float) and value.is_integer():
            return int(value)  # ngf=64 / 2 failed deep in torch; stored 1.0s keep loading
        return value

    @property
    def per_image_statistics(self) -> bool:
        """Batch norm trained at batch size 1 translates with each picture's own statistics (the official test
        script runs G in train mode): the Translator and every export follow this one rule."""
        return self.norm == "batch" and self.batch_size == 1

    @property
    def input_nc(self) -> int:
        return 1 if self.task == "colorize" else 3

    @property
    def output_nc(self) -> int:
        return 2 if self.task == "colorize" else 3

    @property
    def augments(self) -> tuple[str, ...]:
        return tuple(a.strip() for a in self.diff_augment.split(",") if a.strip())

    @property
    def total_epochs(self) -> int:
        return self.epochs + self.epochs_decay

    def _pix2pix_only(self) -> list[str]:
        """The pix2pix-only options this config sets (named in cyclegan's refusal)."""
        given = {"lambda_feat": self.lambda_feat, "ema_decay": self.ema_decay, "diff_augment": self.augments,
                 "label_warp": self.label_warp}
        return [name for name, value in given.items() if value]

    def _type_checks(self) -> list[tuple[bool, str]]:
        """Each field of its annotated type, said with its name: a string for a number failed the checks below
        as "'<=' not supported between instances of 'str' and 'int'", naming no setting, or passed them and
        failed in the trainer (max_steps="200")."""
        checks = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            ok = {"str": isinstance(value, str), "bool": isinstance(value, bool), "float": number,
                  "int": number and isinstance(value, int),
                  "Optional[int]": value is None or (number and isinstance(value, int))}.get(f.type, True)
            checks.append((ok, f"{f.name} must be {TYPE_WORDS.get(f.type, f.type)}, got "
                               f"{repr(value)[:40]} ({type(value).__name__})"))
        return checks

    def validate(self) -> "TrainConfig":
        """Raise a one-line Pix2PixError for any impossible setting."""
        check_all(self._type_checks())
        checks = [
            (self.task in TASKS, f"task must be one of {TASKS}, got {self.task!r}"),
            (self.model in MODELS, f"model must be one of {MODELS}, got {self.model!r}"),
            ((self.model == "cyclegan") == (self.task == "unpaired"),
             "unpaired data (task unpaired) trains with model cyclegan, and cyclegan needs task unpaired" + OFFICIAL),
            (self.model != "cyclegan" or not self.conditional_D,
             "cyclegan's discriminators are unconditional" + OFFICIAL),
            (self.model != "cyclegan" or not self._pix2pix_only(),
             f"cyclegan does not support {', '.join(self._pix2pix_only())} (pix2pix options)"),
            (self.lambda_cycle >= 0 and self.lambda_identity >= 0 and self.pool_size >= 0,
             "lambda_cycle, lambda_identity and pool_size must be >= 0"),
            (self.netG in GENERATORS, f"netG must be one of {GENERATORS}, got {self.netG!r}"),
            (self.netD in DISCRIMINATORS, f"netD must be one of {DISCRIMINATORS}, got {self.netD!r}"),
            (self.gan_mode in GAN_MODES, f"gan_mode must be one of {GAN_MODES}, got {self.gan_mode!r}"),
            (self.norm in NORMS, f"norm must be one of {NORMS}, got {self.norm!r}"),
            (self.precision in PRECISIONS, f"precision must be one of {PRECISIONS}, got {self.precision!r}"),
            (self.direction in ("AtoB", "BtoA"), f"direction must be AtoB or BtoA, got {self.direction!r}"),
            (self.crop_size <= self.load_size, f"crop_size {self.crop_size} is larger than load_size {self.load_size} "
                                               "(the random crop is cut from the image resized to load_size)"),
            (self.crop_size % 2 ** min_downsamplings(self.netG) == 0,
             f"crop_size {self.crop_size} must be a multiple of {2 ** min_downsamplings(self.netG)} for {self.netG}"
             + (" (for 128 px crops: netG unet_128)" if self.netG == "unet_256" else "")),
            (self.batch_size >= 1, "batch_size must be at least 1"),
            (0 <= self.seed < 2**63, f"seed must be 0 to 2**63 - 1 (torch's seed range), got {self.seed}"),
            (self.epochs >= 0 and self.epochs_decay >= 0 and self.total_epochs >= 1, "need at least one epoch"),
            (self.lr > 0, "lr must be positive"),
            (self.d_lr_factor > 0 and math.isfinite(self.d_lr_factor), "d_lr_factor must be a positive number"),
            (self.lambda_l1 >= 0, "lambda_l1 must be >= 0"),
            (self.use_gan or self.lambda_l1 > 0 or self.colour_loss == "classification",
             "with use_gan off, lambda_l1 must be > 0 (nothing to learn)"),
            (self.ngf >= 1 and self.ndf >= 1, "ngf and ndf must be positive"),
            (1 <= self.num_D <= 4, "num_D must be 1 to 4"),
            (self.num_D == 1 or self.netD in ("basic", "n_layers"), "num_D > 1 needs a PatchGAN (netD basic or n_layers)"),
            (self.lambda_feat >= 0, "lambda_feat must be >= 0"),
            (self.lambda_feat == 0 or self.netD in ("basic", "n_layers"),
             "feature matching (lambda_feat) needs a PatchGAN (netD basic or n_layers)"),
            (0 <= self.ema_decay < 1, "ema_decay must be in [0, 1)"),
            (all(a in AUGMENTS for a in self.augments), f"diff_augment must be a comma list of {AUGMENTS}"),
            (0 <= self.label_warp <= 32, "label_warp must be 0 to 32 pixels"),
            (self.colour_loss in COLOUR_LOSSES, f"colour_loss must be one of {COLOUR_LOSSES}, got {self.colour_loss!r}"),
            (self.colour_loss == "l1" or self.task == "colorize",
             f"colour_loss {self.colour_loss} classifies ab colours: it needs task colorize, not {self.task}"),
            (self.colour_loss != "classification" or self.lambda_class > 0,
             "lambda_class must be > 0 with colour_loss classification"),
            (self.lambda_class >= 0 and math.isfinite(self.lambda_class), "lambda_class must be a finite number >= 0"),
            (self.colour_upsample in COLOUR_UPSAMPLES,
             f"colour_upsample must be one of {COLOUR_UPSAMPLES}, got {self.colour_upsample!r}"),
            (self.colour_upsample == "bilinear" or self.colour_loss == "classification",
             "colour_upsample guided is for the classifier's 1/4-resolution colour: it needs colour_loss classification"),
            (0 < self.colour_temperature <= 1 and math.isfinite(self.colour_temperature),
             "colour_temperature must be in (0, 1] (1 = mean of the bins, towards 0 = their mode)"),
            (all(math.isfinite(v) for v in (self.lr, self.lambda_l1, self.beta1, self.beta2)),
             "lr, lambda_l1, beta1 and beta2 must be finite numbers"),
            (self.load_size <= MAX_IMAGE_SIDE, f"load_size must be at most {MAX_IMAGE_SIDE}"),
            (self.memory_budget_mb >= 0, "memory_budget_mb must be >= 0 (0 = always use the disk cache)"),
            (self.collapse_steps >= 0, "collapse_steps must be >= 0 (0 = never stop for a collapse)"),
        ]
        check_all(checks)
        return self

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainConfig":
        """Build from a stored dict; unknown keys (from newer versions) are ignored. A dict without a direction
        keeps the one it had when written (LEGACY_DIRECTION), not today's default for its task. Values taken
        without a check before the type checks, and trained with, are read as they were used (`_as_used`)."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        known = {k: _as_used(fields[k], v) for k, v in values.items() if k in fields}
        return cls(**{"direction": LEGACY_DIRECTION, **known})

    @classmethod
    def from_json(cls, text: str) -> "TrainConfig":
        return cls.from_dict(json.loads(text))


# Each setting's name and declared type as written ("int", "Optional[int]"): built once, for as_declared (run for
# every field of every TrainConfig made) and for the command line's and --resume's checks of given names
SETTING_TYPES: dict[str, str] = {field.name: field.type for field in dataclasses.fields(TrainConfig)}

def _as_used(field: dataclasses.Field, value: Any) -> Any:
    """A stored value as the run that stored it used it: 0 / 1 for a True-or-False setting (dropout=0) and None
    for a text one (cache_dir=None: its default) trained without a word before TrainConfig checked types, and
    their checkpoints must keep loading."""
    if field.type == "bool" and type(value) is int and value in (0, 1):
        return bool(value)
    if field.type == "str" and value is None:
        return field.default
    return value


# CycleGAN's official defaults (Zhu et al. 2017, sec. 4 and the reference code): ResNet generators (9 blocks
# at 256 px, 6 at 128), instance norm, least-squares GAN, no dropout, unconditional 70x70 PatchGANs.
CYCLEGAN_DEFAULTS: dict[str, Any] = {"model": "cyclegan", "netG": "resnet_9blocks", "norm": "instance",
                                     "gan_mode": "lsgan", "dropout": False, "conditional_D": False,
                                     "direction": "AtoB"}


def cyclegan_config(**values: Any) -> "TrainConfig":
    """A CycleGAN TrainConfig: the official defaults, task unpaired, `values` on top."""
    return TrainConfig(**{**CYCLEGAN_DEFAULTS, "task": "unpaired", **values}).validate()


# Named sets of settings, applied on top of the task's defaults by `train --recipe NAME`.
# paper: the published recipe (sec. 3-4 of Isola et al.), which TrainConfig's defaults already are.
# studio: what our facades ablation (docs/ablation.md) found looks most like real photos: the paper's
#   recipe with an unconditional PatchGAN (D judges the photo alone). On 400 facades the conditional D
#   learns to check label/photo agreement that L1 already enforces; judging realism alone, D pushes G to
#   photo texture: KID 7 vs 30 (x1000, facade-segmenter features) on val, with the FCN-score kept.
#   The pix2pixHD-style options (multi-scale D, feature matching, spectral norm, hinge) scored worse there.
RECIPES: dict[str, dict[str, Any]] = {
    "paper": {},
    "studio": {"conditional_D": False},
}
DEFAULT_RECIPE = {"facades": "studio"}  # other tasks keep the paper's recipe (studio is measured on facades only)


def recipe_settings(task: str, recipe: Optional[str] = None) -> dict[str, Any]:
    """The settings of `recipe`, or of the task's default recipe, to apply on top of TrainConfig's defaults."""
    name = recipe or DEFAULT_RECIPE.get(task, "paper")
    if name not in RECIPES:  # a KeyError naming only the typo
        raise Pix2PixError(f"recipe must be one of {tuple(RECIPES)}, got {name!r}")
    return dict(RECIPES[name])


def min_downsamplings(net_g: str) -> int:
    """How many times the generator halves the image: crop sizes must be divisible by 2**this."""
    if net_g.endswith("_256"):
        return 8
    if net_g.endswith("_128"):
        return 7
    return 2  # ResNet generators downsample twice
