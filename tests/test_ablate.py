"""scripts/ablate.py's command line: checked before any training starts, so a typo costs no compute and
a hand-written doc is never overwritten."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts import ablate


def test_doc_and_figure_default_to_the_run_folder(tmp_path):
    args = ablate.parse_args(["--data", "data/facades", "--out", str(tmp_path / "abl")])
    assert args.doc == tmp_path / "abl" / "ablation.md" and args.figure == tmp_path / "abl" / "ablation.jpg"


def test_relative_data_and_out_are_taken_from_where_the_script_runs(tmp_path, monkeypatch):
    """The runs are subprocesses in the repository root: a relative --data was read from there, not from where
    the user ran the script (its training failed: data folder not found)."""
    monkeypatch.chdir(tmp_path)
    args = ablate.parse_args(["--data", "facades", "--out", "abl"])
    assert (args.data, args.out) == (tmp_path / "facades", tmp_path / "abl")


def test_every_listed_slug_is_accepted_and_an_unknown_one_is_an_error(tmp_path, capsys):
    slugs = [ablate.slug(row.name) for row in ablate.ROWS]
    assert len(set(slugs)) == len(slugs)  # each row reachable by its own slug
    assert ablate.parse_args(["--data", "d", "--out", str(tmp_path), "--rows", ",".join(slugs)]).rows
    with pytest.raises(SystemExit) as stopped:
        ablate.parse_args(["--data", "d", "--out", str(tmp_path), "--rows", "paper,l1_only"])
    assert stopped.value.code == 2
    assert "unknown rows: paper (see --list)" in capsys.readouterr().err
    assert ablate.parse_args(["--list"]).list  # --list alone: no --data needed to see the slugs
    with pytest.raises(SystemExit):
        ablate.parse_args(["--out", str(tmp_path)])
    assert "required: --data" in capsys.readouterr().err


def test_a_doc_written_by_hand_is_refused_and_one_written_by_the_script_is_replaced(tmp_path, capsys):
    curated = tmp_path / "ablation.md"
    curated.write_text("# Facades ablation: what makes the photos look real\n\nhand-written sections\n")
    with pytest.raises(SystemExit):
        ablate.parse_args(["--data", "d", "--out", str(tmp_path), "--doc", str(curated)])
    assert "was not written by this script" in capsys.readouterr().err
    assert curated.read_text().endswith("hand-written sections\n")  # untouched
    written = tmp_path / "table.md"
    written.write_text(f"# Facades ablation\n\n{ablate.DOC_MARK} (scripts/ablate.py). Budget ...\n")
    assert ablate.parse_args(["--data", "d", "--out", str(tmp_path), "--doc", str(written)]).doc == written


def test_the_project_doc_is_protected():
    """docs/ablation.md holds sections no run can regenerate: the script must refuse it as --doc."""
    doc = Path(ablate.ROOT) / "docs" / "ablation.md"
    assert doc.is_file() and ablate.DOC_MARK not in doc.read_text(encoding="utf-8")


def test_a_collapsed_run_is_recognised_and_marked_in_the_table(tmp_path):
    log = tmp_path / "log.txt"
    log.write_text("x" * 10_000 + "\nerror: the GAN collapsed: the discriminator has won, ...\n")
    assert ablate.ended_in_collapse(log, 1)
    assert not ablate.ended_in_collapse(log, 0) and not ablate.ended_in_collapse(tmp_path / "missing.txt", 1)
    log.write_text("error: training diverged at step 4 (G_L1=nan)\n")
    assert not ablate.ended_in_collapse(log, 1)
    metrics = {"fcn_pixel_acc": 0.5, "fcn_class_acc": 0.3, "fcn_miou": 0.2, "kid_x1000": 60.0, "two_sample_acc": 1.0}
    records = [{"name": "+ multi-scale D", "seed": 0, "metrics": metrics, "epochs_done": 9.3, "minutes": 4.0,
                "collapsed": True},
               {"name": "paper", "seed": 0, "metrics": metrics, "epochs_done": 30, "minutes": 9.0, "collapsed": False}]
    table = ablate.write_table(records, None).splitlines()
    assert "| 9.3 (collapsed: stopped) |" in table[2] and "| 30 | 9.0 |" in table[3]
