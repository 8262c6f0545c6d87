"""TrainConfig as Python callers build it: wrong types named in one line, paths and whole floats taken."""

from pathlib import Path

import pytest

from pix2pix_core.config import TrainConfig, recipe_settings
from pix2pix_core.errors import Pix2PixError


@pytest.mark.parametrize("field, value, words", [
    ("crop_size", "256", "crop_size must be a whole number, got '256' (str)"),
    ("ngf", 8.5, "ngf must be a whole number, got 8.5 (float)"),
    ("lr", "2e-4", "lr must be a number, got '2e-4' (str)"),
    ("max_steps", "200", "max_steps must be a whole number or None, got '200' (str)"),
    ("flip", "no", "flip must be True or False, got 'no' (str)"),
    ("task", 3, "task must be a string, got 3 (int)"),
])
def test_a_setting_of_the_wrong_type_is_named_in_one_line(field, value, words):
    """A string for a number failed as "'<=' not supported between instances of 'str' and 'int'" (or passed
    validate and failed in the trainer: max_steps, or in torch: ngf 8.5)."""
    with pytest.raises(Pix2PixError) as error:
        TrainConfig(**{field: value}).validate()
    assert str(error.value) == words


def test_paths_and_whole_floats_are_taken_as_str_and_int():
    """data=Path(...) failed at the run's first save (config.json: PosixPath is not JSON serializable), and
    ngf=64 / 2 in torch's layer constructors."""
    config = TrainConfig(data=Path("data/facades"), out=Path("runs/x"), ngf=64 / 2, max_steps=10.0).validate()
    assert (config.data, config.out, config.ngf, config.max_steps) == ("data/facades", "runs/x", 32, 10)
    assert type(config.ngf) is int and type(config.max_steps) is int
    assert '"data": "data/facades"' in config.to_json()


def test_an_unknown_recipe_is_one_clear_error():
    with pytest.raises(Pix2PixError, match=r"recipe must be one of \('paper', 'studio'\), got 'studi'"):
        recipe_settings("facades", "studi")
    assert recipe_settings("facades") == {"conditional_D": False}


def test_a_checkpoint_of_a_config_that_trained_before_the_type_checks_still_loads():
    """TrainConfig took 0 / 1 for a True-or-False setting and None for a folder without a word, and trained with them
    (dropout=0, flip=1, cache_dir=None): the config stored in such a run's checkpoints was refused at every load once
    the type checks came ("dropout must be True or False, got 0 (int)"), so the model could not be used, resumed
    or exported. A stored config reads them as they were used; a config built now is still told."""
    import json

    from pix2pix_core.checkpoint import config_of

    stored = {**json.loads(TrainConfig(task="facades", data="data/facades").to_json()),
              "dropout": 0, "flip": 1, "cache_dir": None}
    config = config_of({"config": json.dumps(stored)})
    assert (config.dropout, config.flip, config.cache_dir) == (False, True, "")
    assert type(config.dropout) is bool and type(config.flip) is bool
    with pytest.raises(Pix2PixError, match=r"dropout must be True or False, got 0 \(int\)"):
        TrainConfig(dropout=0).validate()
