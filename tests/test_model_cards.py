"""Every bundled model has a Hugging Face-format card: YAML front matter with licence, tags, datasets, metrics."""

from pathlib import Path

import pytest
import yaml

CHECKPOINTS = Path(__file__).resolve().parent.parent / "checkpoints"
MODELS = sorted(p.stem for p in CHECKPOINTS.glob("*.safetensors"))


@pytest.mark.parametrize("name", MODELS)
def test_model_card_has_a_complete_yaml_header(name):
    text = (CHECKPOINTS / f"{name}.md").read_text(encoding="utf-8")
    assert text.startswith("---\n")
    header = yaml.safe_load(text.split("---\n")[1])
    assert header["license"] and header["tags"] and header["datasets"] and header["pipeline_tag"]
    (entry,) = header["model-index"]
    assert entry["name"] == name
    metrics = entry["results"][0]["metrics"]
    assert metrics and all(isinstance(m["value"], (int, float)) and m["type"] and m["name"] for m in metrics)
    assert f"# {name}" in text.split("---\n", 2)[2]  # the card's text follows the header


def test_every_bundled_model_is_listed():
    assert MODELS == ["facades_label2photo", "facades_segmenter", "food_colorize"]
