"""What `--resume` (and `resume_config`) may change: the schedule's length and the bookkeeping are applied and
said on the run's first line; anything that changes what the run learns is refused, naming both values. And
the library's default direction per task is the command line's."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from pix2pix_core.cli import _config_from_args, build_parser, main
from pix2pix_core.config import TASKS, TrainConfig
from pix2pix_core.errors import Pix2PixError
from pix2pix_core.train import LossEvent, Trainer, resume_config


def cli_args(data: Path, out: Path, *extra: str) -> list[str]:
    """A tiny facades run as typed (tiny_config's settings; no --recipe: the studio recipe of the CLI)."""
    return ["train", "--task", "facades", "--data", str(data), "--out", str(out), "--netG", "unet_128",
            "--crop-size", "128", "--load-size", "136", "--ngf", "8", "--ndf", "8", "--batch-size", "2",
            "--epochs", "2", "--epochs-decay", "0", "--sample-every", "0", "--save-every", "0",
            "--precision", "fp32", "--threads", "1", *extra]


def step_of(run: Path) -> int:
    with safe_open(str(run / "checkpoints" / "latest.safetensors"), framework="pt") as handle:
        return json.loads(handle.metadata()["state"])["step"]


@pytest.fixture
def stopped_run(facades_dir, tmp_path) -> Path:
    """The run of cli_args(..., --max-steps 4), stopped after step 2 (as Ctrl-C would)."""
    run = tmp_path / "run"
    config = _config_from_args(build_parser().parse_args(cli_args(facades_dir, run, "--max-steps", "4")))
    trainer = Trainer(config, callbacks=[lambda e: isinstance(e, LossEvent) and e.step == 2 and trainer.stop()])
    trainer.run()
    assert step_of(run) == 2
    return run


def test_resume_with_the_same_flags_is_silent(stopped_run, facades_dir, capsys):
    assert main(cli_args(facades_dir, stopped_run, "--max-steps", "4", "--resume")) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.endswith(f"; resuming from step 2 -> {stopped_run}"), first  # nothing said changed
    assert step_of(stopped_run) == 4



def test_resume_spelling_the_same_folders_another_way_is_silent(stopped_run, facades_dir, capsys, monkeypatch):
    """Trained with absolute paths, resumed from their parent with relative ones: the first line said
    "with data /abs/facades -> facades, out /abs/run -> run" of the very same folders."""
    monkeypatch.chdir(stopped_run.parent)
    data = Path(os.path.relpath(facades_dir))
    assert main(cli_args(data, Path(stopped_run.name), "--max-steps", "4", "--resume")) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.endswith(f"; resuming from step 2 -> {stopped_run.name}"), first

def test_resume_refuses_what_changes_the_learning_naming_each_field(stopped_run, facades_dir, capsys):
    """A facades run (BtoA, batch 2) resumed with another direction, batch size and lr: it trained the
    opposite direction with another batch-norm mode and skipped the rest of its epoch, exit 0, no word."""
    config_json = (stopped_run / "config.json").read_text()
    args = cli_args(facades_dir, stopped_run, "--max-steps", "4", "--resume", "--direction", "AtoB",
                    "--batch-size", "4", "--lr", "1e-3")
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    for fragment in ("direction BtoA (given: AtoB)", "lr 0.0002 (given: 0.001)", "batch_size 2 (given: 4)",
                     "another --out", "--init-from"):
        assert fragment in err[0], err[0]
    assert step_of(stopped_run) == 2 and (stopped_run / "config.json").read_text() == config_json


def test_resume_compares_a_typed_task_and_recipe(stopped_run, facades_dir, capsys):
    """--task colorize on a facades run was dropped (it went on training facades); so was --recipe."""
    args = cli_args(facades_dir, stopped_run, "--max-steps", "4", "--resume")
    args[args.index("facades")] = "colorize"
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "task facades (given: colorize)" in err and "--init-from" not in err  # its weights would not fit
    assert main([*cli_args(facades_dir, stopped_run, "--max-steps", "4", "--resume"), "--recipe", "paper"]) == 2
    assert "conditional_D False (given: True)" in capsys.readouterr().err  # the run has the studio recipe's D
    assert step_of(stopped_run) == 2


def test_resume_with_a_longer_schedule_applies_it_and_says_so(stopped_run, facades_dir, capsys):
    args = cli_args(facades_dir, stopped_run, "--max-steps", "5", "--resume", "--log-every", "3")
    args[args.index("--epochs") + 1] = "5"
    assert main(args) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert "resuming from step 2 with epochs 2 -> 5, max_steps 4 -> 5, log_every 1 -> 3" in first, first
    stored = json.loads((stopped_run / "config.json").read_text())
    assert (stored["epochs"], stored["max_steps"], stored["log_every"]) == (5, 5, 3) and step_of(stopped_run) == 5


def test_the_library_resume_holds_to_the_same_rule(stopped_run):
    assert resume_config(stopped_run, {"epochs": 9, "direction": "BtoA"}).epochs == 9  # an equal value is fine
    with pytest.raises(Pix2PixError, match=r"the checkpoint has batch_size 2 \(given: 1\), seed 0 \(given: 3\)"):
        resume_config(stopped_run, {"batch_size": 1, "seed": 3, "max_steps": 9})
    hand_built = resume_config(stopped_run)
    hand_built.lambda_l1 = 10.0
    with pytest.raises(Pix2PixError, match=r"lambda_l1 100.0 \(given: 10.0\)"):
        Trainer(hand_built, resume=True).run()
    assert step_of(stopped_run) == 2


def test_the_library_resume_takes_paths_and_whole_floats_as_train_config_does(stopped_run, facades_dir, tmp_path):
    """TrainConfig takes data=Path(...) (and max_steps=9.0); resume_config refused them: "data must be a string,
    got PosixPath(...)"."""
    config = resume_config(stopped_run, {"data": Path(facades_dir), "cache_dir": tmp_path / "cache", "max_steps": 9.0})
    assert (config.data, config.cache_dir, config.max_steps) == (str(facades_dir), str(tmp_path / "cache"), 9)
    assert resume_config(Path(stopped_run), {"out": stopped_run}).out == str(stopped_run)
    with pytest.raises(Pix2PixError, match=r"the checkpoint has ngf 8 \(given: 16\)"):
        resume_config(stopped_run, {"ngf": 16.0})  # still refused, now said as the whole number it is


def test_a_copied_run_resumes_into_its_own_folder(stopped_run, tmp_path):
    """resume_config(copy) kept the stored out: the Trainer then went on in the original folder."""
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(stopped_run, copy)
    assert resume_config(copy).out == str(copy)


# ------------------------------------------------------------------------------- --init-from with --resume
def started_from(run: Path):
    with safe_open(str(run / "checkpoints" / "latest.safetensors"), framework="pt") as handle:
        return json.loads(handle.metadata()["state"]).get("init_from", "not recorded")


def test_the_same_fine_tune_command_plus_resume_goes_on_without_a_word(facades_checkpoint, facades_dir, tmp_path,
                                                                       capsys):
    """Each checkpoint records the model its run started from; the fine-tune's own --init-from (here its run
    folder, which stands for the same file) resumes as if it were not given."""
    run = tmp_path / "tune"
    assert main(cli_args(facades_dir, run, "--max-steps", "2", "--init-from", str(facades_checkpoint))) == 0
    assert started_from(run) == str(facades_checkpoint.resolve())
    capsys.readouterr()
    folder = facades_checkpoint.parent.parent
    assert main(cli_args(facades_dir, run, "--max-steps", "4", "--resume", "--init-from", str(folder))) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.endswith(f"; resuming from step 2 with max_steps 2 -> 4 -> {run}"), first
    assert step_of(run) == 4 and started_from(run) == str(facades_checkpoint.resolve())


def test_the_same_command_resumes_after_the_run_folder_it_started_from_was_deleted(facades_checkpoint, facades_dir,
                                                                                   tmp_path, capsys):
    """A fine-tune from a run folder records that folder's latest checkpoint; with the folder deleted since (its
    weights are in the fine-tune's own checkpoint), the same command plus --resume was refused as "started from
    another model"."""
    source = tmp_path / "source"
    (source / "checkpoints").mkdir(parents=True)
    shutil.copy(facades_checkpoint, source / "checkpoints" / "latest.safetensors")
    run = tmp_path / "tune"
    assert main(cli_args(facades_dir, run, "--max-steps", "2", "--init-from", str(source))) == 0
    shutil.rmtree(source)
    capsys.readouterr()
    assert main(cli_args(facades_dir, run, "--max-steps", "4", "--resume", "--init-from", str(source))) == 0
    assert step_of(run) == 4
    assert main(cli_args(facades_dir, run, "--max-steps", "6", "--resume", "--init-from",
                         str(tmp_path / "another"))) == 2  # a folder it did not start from: refused as before
    assert "cannot resume" in capsys.readouterr().err


def test_resume_refuses_an_init_from_the_run_did_not_start_from(stopped_run, facades_checkpoint, facades_dir,
                                                                tmp_path, capsys):
    """--init-from on --resume was dropped without a word: a run trained from scratch went on from its own
    weights, not the model given. Refused in one line, from the command line and from Python, for a run from
    scratch and for a fine-tune of another model; nothing trains."""
    from pix2pix_core.checkpoint import export_generator

    assert started_from(stopped_run) is None  # trained from scratch: recorded as such
    assert main(cli_args(facades_dir, stopped_run, "--max-steps", "4", "--resume",
                         "--init-from", str(facades_checkpoint))) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: cannot resume "), err
    for fragment in (f"--init-from {facades_checkpoint}: the run was trained from scratch", "keeps its weights",
                     "resume without --init-from", "another --out"):
        assert fragment in err[0], err[0]
    other = export_generator(facades_checkpoint, tmp_path / "g.safetensors", torch.float32)
    tune = tmp_path / "tune"
    assert main(cli_args(facades_dir, tune, "--max-steps", "2", "--init-from", str(other))) == 0
    capsys.readouterr()
    assert main(cli_args(facades_dir, tune, "--max-steps", "4", "--resume", "--init-from",
                         str(facades_checkpoint))) == 2
    assert f"the run started from {other.resolve()}" in capsys.readouterr().err
    config = resume_config(stopped_run, {"max_steps": 4})
    with pytest.raises(Pix2PixError, match="the run was trained from scratch"):
        Trainer(config, resume=True, init_generator=facades_checkpoint).run()
    assert step_of(stopped_run) == 2 and step_of(tune) == 2


def test_a_checkpoint_without_the_record_resumes_and_says_whose_generator_goes_on(stopped_run, facades_checkpoint,
                                                                                   facades_dir, capsys):
    """A checkpoint written before runs recorded their start cannot tell a fine-tune's own --init-from from
    another: it resumes (as it always did), and the first line says the generator is the checkpoint's."""
    from pix2pix_core.checkpoint import atomic_save, read_checkpoint

    latest = stopped_run / "checkpoints" / "latest.safetensors"
    tensors, metadata = read_checkpoint(latest)
    state = json.loads(metadata["state"])
    state.pop("init_from", None)  # as written before runs recorded it
    atomic_save(tensors, {**metadata, "state": json.dumps(state)}, latest)
    assert main(cli_args(facades_dir, stopped_run, "--max-steps", "4", "--resume",
                         "--init-from", str(facades_checkpoint))) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.endswith("; resuming from step 2 (its generator is the checkpoint's, not latest.safetensors: the "
                          f"checkpoint does not record what the run started from) -> {stopped_run}"), first
    assert step_of(stopped_run) == 4 and started_from(stopped_run) == "not recorded"  # nothing is made up


@pytest.mark.parametrize("task", TASKS)
def test_the_library_and_the_cli_train_the_same_direction(task, tmp_path):
    cli = _config_from_args(build_parser().parse_args(["train", "--task", task, "--data", str(tmp_path),
                                                       "--out", str(tmp_path / "run")]))
    library = TrainConfig(task=task, data=str(tmp_path))
    assert library.direction == cli.direction == {"facades": "BtoA", "colorize": "BtoA"}.get(task, "AtoB")


def test_aligned_data_reads_a_to_b_from_python_too():
    assert TrainConfig(task="aligned").direction == TrainConfig(task="paired").direction == "AtoB"
    assert TrainConfig(task="aligned", direction="BtoA").direction == "BtoA"
    stored = TrainConfig(task="aligned", direction="BtoA")
    assert TrainConfig.from_json(stored.to_json()).direction == "BtoA"  # a checkpoint's config loads as written
    # a stored config without the field (none is known: it has been written since the first version) keeps the
    # direction every task had then
    assert TrainConfig.from_dict({"task": "aligned"}).direction == "BtoA"
