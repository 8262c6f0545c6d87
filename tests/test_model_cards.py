"""Every bundled model has a Hugging Face-format card: YAML front matter with licence, tags, datasets, metrics."""

import re
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


# ---------------------------------------------------------------------------------------------- cross-references
ROOT = CHECKPOINTS.parent
DOCS = [ROOT / "README.md", *sorted(CHECKPOINTS.glob("*.md")), *sorted((ROOT / "docs").glob("*.md"))]


def _titles(text: str) -> list[str]:
    """A document's headings and bold paragraph titles (`**Training crash safety**`), as written."""
    headings = re.findall(r"^#+ (.+)$", text, re.M)
    return headings + re.findall(r"^(?:- )?\*\*([^*]+)\*\*", text, re.M)


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_references_to_readme_sections_name_one_that_exists():
    """`README "Realism"` in a card, a doc or a script's help must name a README heading (its start): a renamed
    section left "Evaluating realism" behind in scripts/ablate.py and the ablation doc it writes."""
    titles = _titles((ROOT / "README.md").read_text(encoding="utf-8"))
    sources = DOCS + [path for folder in ("pix2pix_core", "demo", "scripts", "benchmarks")
                      for path in sorted((ROOT / folder).glob("*.py"))]
    references = [(path.name, " ".join(name.split())) for path in sources
                  for name in re.findall(r'README[`\'s]*,? \\?"([^"\\]+)\\?"', path.read_text(encoding="utf-8"))]
    assert len(references) > 5
    assert [(where, name) for where, name in references if not any(t.startswith(name) for t in titles)] == []


def test_relative_links_in_the_docs_resolve():
    broken = []
    for path in DOCS:
        for target in re.findall(r"\]\(([^)\s]+)\)", path.read_text(encoding="utf-8")):
            if re.match(r"[a-z]+:", target):
                continue
            file, _, anchor = target.partition("#")
            linked = (path.parent / file) if file else path
            if not linked.exists() or (anchor and anchor not in
                                       {_slug(h) for h in re.findall(r"^#+ (.+)$", linked.read_text(), re.M)}):
                broken.append((path.name, target))
    assert broken == []
