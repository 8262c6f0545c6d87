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


def _section(text: str, heading: str) -> str:
    """The body of a `## heading` section: up to the next `## ` heading or the end."""
    body = text.split(f"\n## {heading}\n", 1)[1]
    return body.split("\n## ", 1)[0].strip()


@pytest.mark.parametrize("name", MODELS)
def test_model_card_shares_the_bundle_text_word_for_word(name):
    """The cards repeat checkpoints/README.md's common text (how the models were made, what more compute
    would buy) so each can be uploaded alone; a change to one copy must reach all of them."""
    bundle = (CHECKPOINTS / "README.md").read_text(encoding="utf-8")
    card = (CHECKPOINTS / f"{name}.md").read_text(encoding="utf-8")
    how_it_was_made = bundle.split("# Bundled models\n", 1)[1].split("\n## ", 1)[0].strip()
    assert _section(card, "How it was made") == how_it_was_made
    assert _section(card, "With more compute") == _section(bundle, "With more compute")
