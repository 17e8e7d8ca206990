"""What a training run does, as one plain dataclass that is checked once and saved as `config.json`.

Three modes share it. `fast` (the default) trains a small head on cached poster embeddings from the
frozen pretrained backbone; `fine-tune` does that first, then unfreezes the backbone's top blocks and
trains on images at a low learning rate; `scratch` trains the classic tutorial's small CNN from pixels,
the baseline the pretrained modes must beat. Values left out take the mode's defaults below, so every
saved config is complete and two runs can be compared by diffing their `config.json`.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from typing import Any

from core.model.backbones import BACKBONES, DEFAULT_BACKBONE, MAX_TUNED_BLOCKS

MODES = ("fast", "fine-tune", "scratch")
POS_WEIGHTINGS = ("none", "sqrt", "balanced", "effective-number")
LOSSES = ("bce", "asymmetric")  # core.model.losses.genre_loss

# Posters are about 2:3 portrait (median 300×434 px here): the sizes keep that shape, height × width in px.
# The fast run's size, also the similarity index's (core.serving.poster_index), so that both share one backbone pass.
FAST_IMAGE_SIZE = (384, 256)
_MODE_DEFAULTS: dict[str, dict[str, Any]] = {
    # The head trains on cached features: large batches keep an epoch to a fraction of a second. The rest is
    # what did best on posters of newer movies than the training ones within 2.5 times the old embedding
    # cost (bench/bench_new_movies.py, README): 384×256 posters, three heads averaged, refitted on training +
    # validation.
    "fast": {
        "image_size": FAST_IMAGE_SIZE,
        "epochs": 80,
        "learning_rate": 1e-3,
        "batch_size": 128,
        "head_ensemble": 3,
        "refit": True,
    },
    "fine-tune": {"image_size": (320, 224), "epochs": 3, "learning_rate": 1e-4, "temporal_twin": False},
    # The tutorial trained at 400×300; 150×100 keeps its shape and trains in minutes on two CPU cores.
    "scratch": {"image_size": (150, 100), "epochs": 20, "learning_rate": 1e-3, "temporal_twin": False},
}
# The backbone halves the image five times; smaller sides leave it nothing to look at.
MIN_IMAGE_SIDE = 32
MAX_IMAGE_SIDE = 1024
MAX_EPOCHS = 1000
MIN_YEAR, MAX_YEAR = 1870, 2200  # a first temporal test year outside these is a typo


class ConfigError(ValueError):
    """A training setting is invalid; the message names the setting and what is allowed."""


@dataclass(frozen=True)
class TrainingConfig:
    """Every setting of one run. Units: pixels, epochs, movies, learning rates per step."""

    mode: str = "fast"
    epochs: int = 80  # fast: head epochs on embeddings; fine-tune: epochs on images after the head; scratch: all
    image_size: tuple[int, int] = (320, 224)  # height, width in pixels, what the model sees
    learning_rate: float = 3e-4  # fine-tune: the low rate of the unfrozen backbone phase
    batch_size: int = 32  # posters per step on each device
    min_movies_per_genre: int = 50  # a genre with fewer movies in the split is left out of the run
    include_non_movies: bool = False  # series and games of the catalog, off: the task is movie posters
    # Train and validate on the users' label corrections (core.corrections); the test part keeps the labels
    # the split was drawn with, and its metrics are also reported with later corrections.
    use_corrections: bool = True
    seed: int = 42  # weights, shuffles and augmentation; the split has its own, fixed seed
    # The head on the embedding: dropout, then an optional hidden layer, then one sigmoid per genre.
    # On validation, a 512-unit ReLU layer with dropout 0.7 at 3e-4 gave mAP 0.356 against 0.336 for a
    # linear head (mean of 3 seeds each); wider, narrower or less dropout did no better.
    head_hidden_units: int = 512
    dropout: float = 0.7
    # Positive-class weights of the binary cross-entropy ("none", "sqrt" or "balanced" negatives/positives,
    # capped). Plain BCE, with per-genre thresholds for the decisions, ranks as well as anything here: on
    # validation (3 seeds) "sqrt" gave mAP 0.353 against 0.355 and hit@3 0.918 against 0.914, a wash;
    # uncapped "balanced" cost 2.7 points of hit@3 and 3.3 of P@3 (with a linear head: 11 points of hit@3).
    pos_weighting: str = "none"
    pos_weight_cap: float = 5.0
    # "bce", binary cross-entropy, or "asymmetric", Ridnik et al.'s asymmetric loss, which turns down the many
    # easy negatives of the rare genres (core.model.losses).
    loss: str = "bce"
    # Also embed the mirrored poster and average the two embeddings (at training and at prediction).
    flip_tta: bool = False
    # fast only: a second, smaller size at which the backbone also sees the poster (resized down from
    # `image_size` inside the model), its embedding averaged with the first (None: one size). Coarse and fine
    # detail in one vector, for about 1 + (smaller area / area) times the embedding cost.
    multi_scale: tuple[int, int] | None = None
    # fast only: how many heads, each from its own seed (seed, seed + 1, …), whose scores are averaged. Each
    # chooses its best epoch on validation; their average is steadier than any one of them.
    head_ensemble: int = 1
    # fast only: once validation has chosen each head's best epoch and the thresholds, train each head again
    # from its seed on training + validation for that many epochs, and save those heads. The validation
    # posters are the newest a run can learn from; the temporal test is where that shows.
    refit: bool = False
    # fast only: after the heads, tune the backbone's last K blocks with them on the cached maps entering
    # those blocks (core.training.top_tuning): up to `tune_epochs` epochs, the blocks at `tune_learning_rate`
    # and the heads, already fitted, ten times slower (0: the backbone stays frozen).
    tune_top_blocks: int = 0
    tune_epochs: int = 15
    tune_learning_rate: float = 1e-4
    # fine-tune only: head epochs on cached embeddings first, then how many top blocks to unfreeze (at most
    # the backbone's block count).
    head_epochs: int = 80
    head_learning_rate: float = 3e-4
    unfreeze_blocks: int = 2
    # Epochs without a better validation mAP before training stops early (0: never stop early).
    patience: int = 20
    # The temporal yardstick (core.training.temporal_split): a twin of the run, same settings, trained on
    # the movies before this year and tested on those from it on (None: the catalog's last year − 4). The
    # fast mode always trains it (seconds on cached features); the image modes when asked.
    temporal_test_from: int | None = None
    temporal_twin: bool = True
    # The pretrained backbone of the fast and fine-tune modes, by its name in core.model.backbones.BACKBONES.
    backbone: str = DEFAULT_BACKBONE
    # fast only: other backbones whose poster features are put beside the backbone's (each embedded and
    # cached on its own), e.g. ("lite1", "lite2"): several views of a poster for the price of their embeddings.
    extra_backbones: tuple[str, ...] = ()

    @property
    def image_height(self) -> int:
        return self.image_size[0]

    @property
    def image_width(self) -> int:
        return self.image_size[1]

    def to_json(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["extra_backbones"] = list(self.extra_backbones)
        values["image_size"] = format_image_size(self.image_size)
        if self.multi_scale is not None:
            values["multi_scale"] = format_image_size(self.multi_scale)
        return values

    @classmethod
    def from_json(cls, data: Any) -> TrainingConfig:
        if not isinstance(data, dict):
            raise ConfigError("a training config must be a JSON object")
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        values = dict(data)
        for name in ("image_size", "multi_scale"):
            if values.get(name) is not None:
                values[name] = parse_image_size(values[name])
        if "extra_backbones" in values:
            values["extra_backbones"] = parse_backbones(values["extra_backbones"])
        return validate(cls(**values))


def parse_image_size(value: Any) -> tuple[int, int]:
    """`"320x224"` (height × width in pixels), or a pair of whole numbers, as `(height, width)`."""
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(\d+)\s*[x×X]\s*(\d+)\s*", value)
        if not match:
            raise ConfigError(f"image size must look like 320x224 (height x width in pixels), got {value!r}")
        size = (int(match.group(1)), int(match.group(2)))
    elif isinstance(value, list | tuple) and len(value) == 2 and all(_is_whole(v) for v in value):
        size = (int(value[0]), int(value[1]))
    else:
        raise ConfigError(f"image size must look like 320x224 (height x width in pixels), got {value!r}")
    if not all(MIN_IMAGE_SIDE <= side <= MAX_IMAGE_SIDE for side in size):
        raise ConfigError(
            f"image height and width must be between {MIN_IMAGE_SIDE} and {MAX_IMAGE_SIDE} pixels, "
            f"got {format_image_size(size)}"
        )
    return size


def parse_backbones(value: Any) -> tuple[str, ...]:
    """`"lite1,lite2"`, or a list of names, as a tuple of backbone names (checked by `validate`)."""
    if isinstance(value, str):
        return tuple(name.strip() for name in value.split(",") if name.strip())
    if isinstance(value, list | tuple) and all(isinstance(name, str) for name in value):
        return tuple(value)
    raise ConfigError(f"extra_backbones must be backbone names such as lite1,lite2, got {value!r}")


def format_image_size(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


def _is_whole(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int)


def _is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)


def make_config(mode: str = "fast", **overrides: Any) -> TrainingConfig:
    """A checked config for `mode`: the mode's defaults, then the given settings (None means default)."""
    if mode not in MODES:
        raise ConfigError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")
    values: dict[str, Any] = {**_MODE_DEFAULTS[mode]}
    known = {field.name for field in dataclasses.fields(TrainingConfig)} - {"mode"}
    for name, value in overrides.items():
        if name not in known:
            raise ConfigError(f"unknown setting {name!r}; known: {', '.join(sorted(known))}")
        if value is not None:
            values[name] = value
    for name in ("image_size", "multi_scale"):
        if values.get(name) is not None:
            values[name] = parse_image_size(values[name])
    if "extra_backbones" in values:
        values["extra_backbones"] = parse_backbones(values["extra_backbones"])
    return validate(TrainingConfig(mode=mode, **values))


def validate(config: TrainingConfig) -> TrainingConfig:
    """Return `config` if every setting is usable; otherwise raise `ConfigError` naming the first bad one."""
    if config.mode not in MODES:
        raise ConfigError(f"unknown mode {config.mode!r}; expected one of {', '.join(MODES)}")
    parse_image_size(config.image_size)
    # Checked before the numbers, since how many blocks can be unfrozen depends on which backbone it is.
    backbone = BACKBONES.get(config.backbone) if isinstance(config.backbone, str) else None
    if backbone is None:
        raise ConfigError(f"backbone must be one of {', '.join(BACKBONES)}, got {config.backbone!r}")
    whole_ranges = {
        "epochs": (1, MAX_EPOCHS),
        "head_epochs": (1, MAX_EPOCHS),
        "batch_size": (1, 4096),
        "min_movies_per_genre": (1, 10**9),
        "head_hidden_units": (0, 65536),
        "unfreeze_blocks": (0, backbone.block_count),
        "patience": (0, MAX_EPOCHS),
        "seed": (0, 2**31 - 1),
        "head_ensemble": (1, 16),
        "tune_top_blocks": (0, min(MAX_TUNED_BLOCKS, backbone.block_count - 1)),
        "tune_epochs": (1, MAX_EPOCHS),
    }
    for name, (low, high) in whole_ranges.items():
        value = getattr(config, name)
        if not _is_whole(value) or not low <= value <= high:
            reason = f" ({backbone.name} has {high} blocks)" if name == "unfreeze_blocks" else ""
            raise ConfigError(f"{name} must be a whole number from {low} to {high}{reason}, got {value!r}")
    for name in ("learning_rate", "head_learning_rate", "tune_learning_rate"):
        value = getattr(config, name)
        if not _is_number(value) or not 0 < value <= 1:
            raise ConfigError(f"{name} must be a number above 0 and at most 1, got {value!r}")
    if not _is_number(config.dropout) or not 0 <= config.dropout < 1:
        raise ConfigError(f"dropout must be a number from 0 up to (not including) 1, got {config.dropout!r}")
    if config.pos_weighting not in POS_WEIGHTINGS:
        raise ConfigError(f"pos_weighting must be one of {', '.join(POS_WEIGHTINGS)}, got {config.pos_weighting!r}")
    if config.loss not in LOSSES:
        raise ConfigError(f"loss must be one of {', '.join(LOSSES)}, got {config.loss!r}")
    if not _is_number(config.pos_weight_cap) or config.pos_weight_cap < 1:
        raise ConfigError(f"pos_weight_cap must be a number of at least 1, got {config.pos_weight_cap!r}")
    if config.multi_scale is not None:
        smaller = parse_image_size(config.multi_scale)
        if config.mode != "fast":
            raise ConfigError("multi_scale is a fast-mode setting: the other modes train the backbone on one size")
        if not all(small < large for small, large in zip(smaller, config.image_size, strict=True)):
            raise ConfigError(
                f"multi_scale must be smaller than the image size in both sides (it is resized down from it), "
                f"got {format_image_size(smaller)} for {format_image_size(config.image_size)}"
            )
    extras = config.extra_backbones
    if not isinstance(extras, tuple) or any(name not in BACKBONES for name in extras):
        raise ConfigError(f"extra_backbones must name backbones among {', '.join(BACKBONES)}, got {extras!r}")
    if len(set(extras)) != len(extras) or config.backbone in extras:
        raise ConfigError(f"extra_backbones must each be another backbone than {config.backbone} and the others")
    if extras and (config.mode != "fast" or config.multi_scale is not None or config.tune_top_blocks):
        raise ConfigError(
            "extra_backbones is a fast-mode setting, for one size and frozen backbones: their features are "
            "embedded once each and put side by side"
        )
    if config.tune_top_blocks and (config.mode != "fast" or config.multi_scale is not None or config.flip_tta):
        raise ConfigError(
            "tune_top_blocks is a fast-mode setting for one size and the plain view: its cached maps are those "
            "of the poster as is, at the run's image size"
        )
    if config.mode != "fast" and (config.head_ensemble != 1 or config.refit is not False):
        raise ConfigError("head_ensemble and refit are fast-mode settings: the other modes train one model on images")
    year = config.temporal_test_from
    if year is not None and (not _is_whole(year) or not MIN_YEAR <= year <= MAX_YEAR):
        raise ConfigError(f"temporal_test_from must be a year from {MIN_YEAR} to {MAX_YEAR}, got {year!r}")
    for name in ("include_non_movies", "flip_tta", "use_corrections", "temporal_twin", "refit"):
        if not isinstance(getattr(config, name), bool):
            raise ConfigError(f"{name} must be true or false, got {getattr(config, name)!r}")
    return config
