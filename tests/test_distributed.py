"""The torchrun path on CPU: 2 processes, gloo, the unchanged `python -m pix2pix_core train` command.

With `dump`, the command runs through tests/ddp_train.py, whose rank callback makes each rank write its
final generator, so the test compares the two processes byte for byte. What cannot be tested here (no GPU): nccl, torch's CUDA SyncBatchNorm, several nodes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from pix2pix_core.checkpoint import load_generator

from conftest import hold_build_lock, write_aligned, write_collection

REPO = Path(__file__).resolve().parents[1]
BUFFER_MARKS = ("running_mean", "running_var", "num_batches_tracked")


@pytest.fixture(scope="module")
def ddp_data(tmp_path_factory) -> Path:
    """8 pairs: 4 per rank, 2 steps per epoch at batch size 2 per rank (the global batch is 4)."""
    root = tmp_path_factory.mktemp("ddp_data")
    write_aligned(root / "train", 8, seed=5)
    return root


def torchrun(data: Path, out: Path, *extra: str, dump: Path | None = None, timeout: float = 90):
    """`torchrun --standalone --nproc_per_node 2 -m pix2pix_core train ...` on a tiny model, 1 thread each."""
    args = ["train", "--task", "facades", "--data", str(data), "--out", str(out), "--netG", "unet_128",
            "--crop-size", "128", "--load-size", "136", "--ngf", "8", "--ndf", "8", "--batch-size", "2",
            "--epochs", "6", "--epochs-decay", "0", "--sample-every", "0", "--save-every", "0",
            "--precision", "fp32", "--threads", "1", *extra]
    entry = [str(REPO / "tests" / "ddp_train.py"), str(dump)] if dump else ["-m", "pix2pix_core"]
    return run_torchrun(entry, args, timeout)


def run_torchrun(entry: list[str], args: list[str], timeout: float, **env: str) -> subprocess.CompletedProcess:
    """`torchrun --standalone --nproc_per_node 2 ENTRY ARGS` in a session of its own. On a hang it is stopped
    with SIGTERM, which torchrun passes on to its workers (they run in sessions of their own: subprocess.run's
    SIGKILL of torchrun left them running, holding the pipes, so a hang would have hung the test suite), and
    its stderr ends with "[HUNG ...]"."""
    import signal

    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", **env}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", *entry, *args]
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGTERM)
        out, err = process.communicate(timeout=60)
        return subprocess.CompletedProcess(command, -9, out, err + f"\n[HUNG: stopped after {timeout:g} s]")
    return subprocess.CompletedProcess(command, process.returncode, out, err)


def state_of(path: Path) -> dict:
    with safe_open(str(path), framework="pt") as handle:
        return json.loads(handle.metadata()["state"])


def csv_steps(run: Path) -> list[int]:
    return [int(line.split(",")[0]) for line in (run / "losses.csv").read_text().splitlines()[1:] if line]


def rank_weights(dump: Path) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    return load_file(str(dump / "rank0_generator.safetensors")), load_file(str(dump / "rank1_generator.safetensors"))


def differing(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], buffers: bool) -> list[str]:
    keys = [k for k in a if k.endswith(BUFFER_MARKS) == buffers]
    assert keys and a.keys() == b.keys()
    return [k for k in keys if not torch.equal(a[k], b[k])]


def g_l1(run: Path) -> list[float]:
    lines = (run / "losses.csv").read_text().splitlines()
    column = lines[0].split(",").index("G_L1")
    return [float(line.split(",")[column]) for line in lines[1:]]


def test_two_processes_train_one_model(ddp_data, tmp_path) -> None:
    """DDP keeps the ranks' parameters bit-identical, the sampler shards the data (2 steps per epoch,
    not 4; the ranks' BatchNorm statistics differ), only rank 0 writes, and the loss goes down."""
    run, dump = tmp_path / "run", tmp_path / "dump"
    result = torchrun(ddp_data, run, dump=dump)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("finished at step 12, epoch 6") == 1  # one report, from rank 0

    rank0, rank1 = rank_weights(dump)
    assert differing(rank0, rank1, buffers=False) == []
    assert differing(rank0, rank1, buffers=True), "identical batch statistics: did both ranks see the same data?"

    latest = run / "checkpoints" / "latest.safetensors"
    saved = {k[2:]: v for k, v in load_file(str(latest)).items() if k.startswith("G.")}
    assert differing(rank0, saved, buffers=False) == [] and differing(rank0, saved, buffers=True) == []
    assert state_of(latest)["world_size"] == 2
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["latest.safetensors"]
    assert csv_steps(run) == list(range(1, 13))  # rank 1 wrote no rows

    losses = g_l1(run)
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3 - 0.5, losses
    load_generator(latest)


def test_sync_bn_and_resume_under_torchrun(ddp_data, tmp_path) -> None:
    """--sync-bn: statistics over the global batch, so even BatchNorm buffers agree across ranks;
    a run stopped at step 4 resumes under torchrun to step 8, and the checkpoint loads into a plain
    (non-synchronised) generator."""
    run, dump = tmp_path / "run", tmp_path / "dump"
    first = torchrun(ddp_data, run, "--sync-bn", "--max-steps", "4", "--checkpoint-every-steps", "2")
    assert first.returncode == 0, first.stderr[-3000:]
    latest = run / "checkpoints" / "latest.safetensors"
    assert state_of(latest)["step"] == 4 and state_of(latest)["world_size"] == 2

    second = torchrun(ddp_data, run, "--sync-bn", "--max-steps", "8", "--resume", dump=dump)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "max_steps at step 8, epoch 4" in second.stdout
    rank0, rank1 = rank_weights(dump)
    assert differing(rank0, rank1, buffers=False) == [] and differing(rank0, rank1, buffers=True) == []
    assert csv_steps(run) == list(range(1, 9))
    generator, config, _ = load_generator(latest)
    assert config.sync_bn and type(generator.model.model[1].model[2]) is torch.nn.BatchNorm2d


_STOP_AT_STEP_3 = """
import sys
from pix2pix_core import cli, train
class StopAtStep3(train.Trainer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.callbacks.append(lambda e: self.stop() if isinstance(e, train.LossEvent) and e.step == 3 else None)
train.Trainer = StopAtStep3
sys.exit(cli.main(sys.argv[1:]))
"""


@pytest.fixture(scope="module")
def stopped_at_step_3(tmp_path_factory) -> subprocess.CompletedProcess:
    """One 2-rank run that two tests read (a torchrun launch is ~10 s of imports): batch size 6 on 8 images, 4 per
    rank (the warning), so 1 step per epoch; rank 0's event callback stops it at step 3 of 10."""
    root = tmp_path_factory.mktemp("stop_at_step_3")
    data = root / "data"
    write_aligned(data / "train", 8, size=32, seed=5)
    script = root / "stop_at_step_3.py"
    script.write_text(_STOP_AT_STEP_3)
    args = ["train", "--task", "facades", "--data", str(data), "--out", str(root / "run"), "--netG",
            "resnet_6blocks", "--ngf", "4", "--ndf", "4", "--crop-size", "32", "--load-size", "36",
            "--sample-every", "0", "--precision", "fp32", "--threads", "1", "--device", "cpu", "--batch-size", "6",
            "--epochs", "10", "--epochs-decay", "0"]
    return run_torchrun([str(script)], args, 60, PIX2PIX_CACHE=str(root / "cache"))


def test_a_batch_larger_than_a_process_s_share_is_warned_about(stopped_at_step_3) -> None:
    """8 images over 2 processes: 4 each, so batch size 6 holds 4 (6 <= 8 was all the check saw)."""
    result = stopped_at_step_3
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stderr.count("warning: batch size 6 is larger than the 4 training images each of 2 processes "
                               "gets (8 shared out by torchrun)") == 2, result.stderr[-2000:]


def test_a_stop_seen_by_rank_0_ends_every_rank(stopped_at_step_3) -> None:
    """Trainer.stop() from an event callback (events reach rank 0 only, as the app's Stop): rank 0 left the
    loop while the other rank went on into its next all-reduce, and both waited until killed."""
    result = stopped_at_step_3
    assert "HUNG" not in result.stderr, "a stop on rank 0 hung every rank"
    assert result.returncode == 0 and "stopped at step 3" in result.stdout, result.stderr[-2000:]


def test_a_rank_0_error_ends_every_rank(ddp_data, tmp_path) -> None:
    """An unwritable run folder is seen by rank 0 only; every rank must stop with the error at once
    (no rank left waiting in a collective until the 30-minute timeout)."""
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    started = time.monotonic()
    result = torchrun(ddp_data, blocker / "run", timeout=60)
    assert result.returncode != 0
    assert time.monotonic() - started < 60
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 2, result.stderr[-3000:]
    assert any("cannot write to the run folder" in line and "is a file, not a folder" in line for line in errors)


def cyclegan_args(data: Path, out: Path, *extra: str) -> list[str]:
    """A tiny CycleGAN run: 4 pictures a side, 2 per rank at batch 1, so 2 steps per epoch."""
    return ["train", "--model", "cyclegan", "--task", "unpaired", "--data", str(data), "--out", str(out),
            "--netG", "resnet_6blocks", "--ngf", "4", "--ndf", "4", "--crop-size", "32", "--load-size", "36",
            "--sample-every", "0", "--precision", "fp32", "--threads", "1", "--device", "cpu",
            "--epochs", "4", "--epochs-decay", "0", *extra]


@pytest.fixture(scope="module")
def cyclegan_straight(tmp_path_factory) -> tuple[Path, Path, subprocess.CompletedProcess]:
    """(data, run folder, result) of a 2-rank CycleGAN run of 8 steps whose ranks dump their final G
    (tests/ddp_train.py, into run/../dump): the DDP test and the resume test read it (a launch is ~10 s)."""
    root = tmp_path_factory.mktemp("cyclegan_ddp")
    data, run = root / "data", root / "straight"
    write_collection(data / "trainA", 4, (200, 60, 40), seed=1, size=24)
    write_collection(data / "trainB", 4, (40, 90, 210), seed=2, size=24)
    args = cyclegan_args(data, run, "--max-steps", "8", "--pool-size", "2")
    return data, run, run_torchrun([str(REPO / "tests" / "ddp_train.py"), str(root / "dump")], args, 120)


def test_cyclegan_under_torchrun(cyclegan_straight) -> None:
    """CycleGAN calls each generator several times per step (translate, reconstruct, identity) before one
    backward; under DDP the ranks must still end with identical weights."""
    _, run, result = cyclegan_straight
    assert result.returncode == 0, result.stderr[-3000:]
    assert "finished at step 8, epoch 4" in result.stdout  # 4 A pictures, 2 per rank: 2 steps per epoch
    rank0, rank1 = rank_weights(run.parent / "dump")
    assert differing(rank0, rank1, buffers=False) == []
    assert state_of(run / "checkpoints" / "latest.safetensors")["world_size"] == 2


def test_a_cyclegan_resumed_under_torchrun_continues_exactly(cyclegan_straight, tmp_path) -> None:
    """8 steps straight == 3 steps + --resume to 8. The checkpoint held rank 0's history pools only and every
    rank resumed with them, so rank 1's D saw another history (92 weights differed): each rank's are kept."""
    data, straight, straight_result = cyclegan_straight
    assert straight_result.returncode == 0, straight_result.stderr[-2000:]
    resumed, entry = tmp_path / "resumed", ["-m", "pix2pix_core"]
    first = run_torchrun(entry, cyclegan_args(data, resumed, "--max-steps", "3", "--pool-size", "2"), 120)
    assert first.returncode == 0, first.stderr[-2000:]
    result = run_torchrun(entry, cyclegan_args(data, resumed, "--max-steps", "8", "--resume"), 120)
    assert result.returncode == 0, result.stderr[-2000:]
    a = load_file(str(straight / "checkpoints" / "latest.safetensors"))
    b = load_file(str(resumed / "checkpoints" / "latest.safetensors"))
    assert "pool.A.rank1" in b
    assert [k for k in a if k.startswith(("G.", "F.", "DA.", "DB.")) and not torch.equal(a[k], b[k])] == []


_STOP_WHILE_LOADING = """
import os, sys
from pix2pix_core import cli, train

class StopOnNotice:
    '''stderr that calls `stop` once the cache's "waiting for another process" notice is written to it.'''
    def __init__(self, stream, stop):
        self.stream, self.stop = stream, stop
    def write(self, text):
        if "waiting for another process building the dataset cache" in text:
            self.stop()
        return self.stream.write(text)
    def __getattr__(self, name):
        return getattr(self.stream, name)

class StopWhileLoading(train.Trainer):
    '''Stopped on rank argv[1]: while it waits for a cache build (argv[2] "waiting"), or at its first
    LoadingEvent ("decoding": events reach rank 0 only, as the app's Stop does).'''
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if os.environ["RANK"] == sys.argv[1] and sys.argv[2] == "waiting":
            sys.stderr = StopOnNotice(sys.stderr, self.stop)
        if os.environ["RANK"] == sys.argv[1] and sys.argv[2] == "decoding":
            self.callbacks.append(lambda event: self.stop() if isinstance(event, train.LoadingEvent) else None)

train.Trainer = StopWhileLoading
sys.exit(cli.main(sys.argv[3:]))
"""


def _stopped_while_loading(tmp_path: Path, rank: str, when: str, *extra: str, before=None):
    """A 2-rank run whose rank `rank` is stopped from code while loading (`when`: argv[2] of the script above);
    `before(args)` is called first, and what it returns once the run has ended."""
    data, run = tmp_path / "data", tmp_path / "run"
    write_aligned(data / "train", 8, size=32, seed=5)
    args = ["train", "--task", "facades", "--data", str(data), "--out", str(run), "--netG", "resnet_6blocks",
            "--ngf", "4", "--ndf", "4", "--crop-size", "32", "--load-size", "36", "--sample-every", "0",
            "--precision", "fp32", "--threads", "1", "--device", "cpu", "--cache-dir", str(tmp_path / "cache"),
            *extra]
    script = tmp_path / "stop_while_loading.py"
    script.write_text(_STOP_WHILE_LOADING)
    after = before(args) if before else (lambda: None)
    try:
        result = run_torchrun([str(script), rank, when], args, 60)
    finally:
        after()
    assert "HUNG" not in result.stderr, f"a stop on rank {rank} hung the job: {result.stderr[-2000:]}"
    assert result.returncode == 0, result.stderr[-2000:]
    assert "stopped at step 0, epoch 0; nothing saved" in result.stdout, result.stdout[-2000:]
    assert not run.exists(), sorted(run.rglob("*"))  # rank 0 made it, and took it away again: nothing in it
    return result


def _hold_the_cache_lock(args: list[str]):
    """Another process builds the run's dataset cache (for ever); returns what lets it go."""
    from pix2pix_core import cli
    from pix2pix_core.data import cache_location


    config = cli._config_from_args(cli.build_parser().parse_args(args))
    path, _ = cache_location(config, Path(config.data) / "train", config.load_size)
    path.parent.mkdir(parents=True)
    holder = hold_build_lock(path)
    return lambda: (holder.kill(), holder.wait())


@pytest.mark.parametrize("stopped_rank", ["0", "1"])
def test_a_stop_on_one_rank_waiting_for_a_cache_build_ends_every_rank(tmp_path, stopped_rank) -> None:
    """Both ranks wait for another process's build of their dataset cache; one of them is stopped from code
    (Trainer.stop()) while it waits. That rank alone gave up and the other went on waiting for the build, then
    into a collective the stopped rank never joined: the job hung. Now every rank ends, stopped, with nothing
    saved, exactly as a single process stopped while loading."""
    result = _stopped_while_loading(tmp_path, stopped_rank, "waiting", "--memory-budget-mb", "0",
                                    before=_hold_the_cache_lock)
    # the stopped rank waited (its notice stopped it); the other stops waiting, or before it began
    assert "waiting for another process building the dataset cache" in result.stderr, result.stderr[-2000:]


def test_a_stop_seen_by_rank_0_while_decoding_ends_every_rank(tmp_path) -> None:
    """Trainer.stop() from a LoadingEvent callback (rank 0 only) while the ranks decode into memory: rank 1
    loaded on and trained into a collective rank 0 never joined."""
    _stopped_while_loading(tmp_path, "0", "decoding")


def _two_ranks(store, prefix: str = "run/"):
    from pix2pix_core.distributed import LoadingOutcome

    return LoadingOutcome(store, prefix, 2), LoadingOutcome(store, prefix, 2)


def test_a_stop_while_loading_reaches_a_rank_still_loading_and_one_waiting() -> None:
    """The store-backed agreement in one process (a HashStore, two ranks): rank 0 stops; rank 1, still
    loading, sees it through its stop flag; a rank already loaded and waiting gets STOPPED as well."""
    import threading

    from pix2pix_core.distributed import LOADED, STOPPED, LoadingOutcome

    store = torch.distributed.HashStore()
    rank0, rank1 = _two_ranks(store)
    assert not LoadingOutcome(store, "run/", 2).stop_seen()
    assert rank0.stop() == STOPPED
    assert rank1.stop_seen() and rank1.stop_seen()  # and it stays seen between looks at the store

    waiting, loaded = _two_ranks(store, "second run/")
    got: list[str] = []
    thread = threading.Thread(target=lambda: got.append(waiting.loaded(lambda: False)), daemon=True)
    thread.start()
    assert loaded.stop() == STOPPED  # the other rank stops while this one waits for it
    thread.join(10)
    assert got == [STOPPED]
    assert LoadingOutcome().loaded(lambda: True) == LOADED and not LoadingOutcome().stop_seen()  # one process


def test_once_every_rank_has_loaded_a_late_stop_is_left_to_the_training_loop() -> None:
    """The first decision stands: the last rank to load decides LOADED, and a rank whose stop comes after that
    trains on (its stop is agreed at the first step) instead of leaving alone while the others train."""
    import threading

    from pix2pix_core.distributed import LOADED

    rank0, rank1 = _two_ranks(torch.distributed.HashStore())
    stopping = threading.Event()
    got: list[str] = []
    thread = threading.Thread(target=lambda: got.append(rank0.loaded(stopping.is_set)), daemon=True)
    thread.start()
    assert rank1.loaded(lambda: False) == LOADED  # the last one decides
    stopping.set()
    thread.join(10)
    assert got == [LOADED] and rank0.stop() == LOADED


_SHORT_TIMEOUT_CACHE_PER_RANK = """
import datetime, os, sys
import torch.distributed as dist
from pix2pix_core import cli
dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=float(sys.argv[1])))  # the trainer uses it
args = sys.argv[2:]
if os.environ["RANK"] == "1":  # as on another machine, with a dataset cache folder of its own
    args[args.index("--cache-dir") + 1] += "-rank1"
sys.exit(cli.main(args))
"""


def test_ranks_wait_for_a_slower_rank_s_loading_longer_than_the_collective_timeout(tmp_path) -> None:
    """Rank 1 waits for a build of its own cache (another machine's folder) after rank 0 has loaded. Rank 0
    waited in its first collective and the collective timeout (2 s here, gloo's 30 min by default) ended the
    job; the ranks now wait for each other's loading through the store, without a timeout."""
    import threading

    from pix2pix_core import cli
    from pix2pix_core.data import cache_location


    data, run, cache = tmp_path / "data", tmp_path / "run", tmp_path / "cache"
    write_aligned(data / "train", 8, size=32, seed=5)
    args = ["train", "--task", "facades", "--data", str(data), "--out", str(run), "--netG", "resnet_6blocks",
            "--ngf", "4", "--ndf", "4", "--crop-size", "32", "--load-size", "36", "--sample-every", "0",
            "--precision", "fp32", "--threads", "1", "--device", "cpu", "--memory-budget-mb", "0",
            "--cache-dir", str(cache), "--max-steps", "1"]
    config = cli._config_from_args(cli.build_parser().parse_args(args))
    rank0_cache, _ = cache_location(config, data / "train", 36)
    config.cache_dir += "-rank1"
    rank1_cache, _ = cache_location(config, data / "train", 36)
    rank1_cache.parent.mkdir(parents=True)
    holder = hold_build_lock(rank1_cache)
    let_go = threading.Event()

    def release_once_rank_0_has_waited_past_the_timeout() -> None:
        for _ in range(600):  # rank 0 has built its cache: it is loaded (at most 60 s)
            if (rank0_cache / "meta.json").exists() or let_go.wait(0.1):
                break
        let_go.wait(6)  # 3 collective timeouts
        holder.kill()
        holder.wait()

    releaser = threading.Thread(target=release_once_rank_0_has_waited_past_the_timeout, daemon=True)
    releaser.start()
    script = tmp_path / "short_timeout.py"
    script.write_text(_SHORT_TIMEOUT_CACHE_PER_RANK)
    try:
        result = run_torchrun([str(script), "2"], args, 90)
    finally:
        let_go.set()
        releaser.join(70)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "max_steps at step 1" in result.stdout, result.stdout[-2000:]


def test_a_rank_that_fails_while_loading_ends_the_ranks_still_loading_or_waiting() -> None:
    """A rank whose loading raised (a full disk under its own cache, say) decided nothing: the others, loading
    on or loaded, waited for an outcome for ever. It decides FAILED, which reaches both."""
    import threading

    from pix2pix_core.distributed import FAILED

    failed, loading = _two_ranks(torch.distributed.HashStore())
    failed.fail()
    assert loading.stop_seen() and loading.stop() == FAILED
    waiting, failing = _two_ranks(torch.distributed.HashStore())
    got: list[str] = []
    thread = threading.Thread(target=lambda: got.append(waiting.loaded(lambda: False)), daemon=True)
    thread.start()
    failing.fail()
    thread.join(10)
    assert got == [FAILED]


_FAIL_LOADING_ON_RANK_1 = """
import os, sys
from pix2pix_core import cli, train
from pix2pix_core.errors import Pix2PixError

if os.environ["RANK"] == "1":
    def build_dataset(*args, **kwargs):
        raise Pix2PixError("no space left for the dataset cache on this machine")
    train.build_dataset = build_dataset
sys.exit(cli.main(sys.argv[1:]))
"""


def test_an_error_while_loading_on_one_rank_ends_a_job_without_torchrun_s_agent(tmp_path) -> None:
    """Two processes joined by env:// alone (another launcher, or the ranks of one machine of several, whose
    agent does not stop them when another machine's rank fails): rank 1 fails while loading; rank 0, loaded,
    waited for it without a timeout. It now ends at once, in one line naming the other rank."""
    import socket

    data, run = tmp_path / "data", tmp_path / "run"
    write_aligned(data / "train", 4, size=32, seed=5)
    script = tmp_path / "fail_loading.py"
    script.write_text(_FAIL_LOADING_ON_RANK_1)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    args = ["train", "--task", "facades", "--data", str(data), "--out", str(run), "--netG", "resnet_6blocks",
            "--ngf", "4", "--ndf", "4", "--crop-size", "32", "--load-size", "36", "--sample-every", "0",
            "--precision", "fp32", "--threads", "1", "--device", "cpu"]
    base = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port), "WORLD_SIZE": "2"}
    ranks = [subprocess.Popen([sys.executable, str(script), *args], cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env={**base, "RANK": r, "LOCAL_RANK": r})
             for r in ("0", "1")]
    try:
        results = [rank.communicate(timeout=60) for rank in ranks]
    finally:
        for rank in ranks:
            if rank.poll() is None:
                rank.kill()
                rank.wait()
    (_, err0), (_, err1) = results
    assert ranks[1].returncode == 2 and "no space left" in err1, err1[-2000:]
    assert ranks[0].returncode == 2, err0[-2000:]
    assert err0.strip().splitlines()[-1] == ("error: another rank failed while loading the training data (its "
                                             "error says why)"), err0[-2000:]
