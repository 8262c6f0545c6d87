"""The app's API, through gradio_client, against a live `python app.py` started on a free port.

The server gets tiny fixture models (exported from conftest's checkpoints) in its own --checkpoints
folder, so nothing here needs the bundled models or ../shared.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from PIL import Image

from app_helpers import app_client, http_call, running_app, save, wait_for_status
from conftest import random_label_map, write_aligned, write_collection
from pix2pix_core.checkpoint import config_of, read_header

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402


# ------------------------------------------------------------------------------------------ server
@pytest.fixture(scope="module")
def app(tmp_path_factory, facades_checkpoint, colorize_checkpoint):
    with running_app(tmp_path_factory.mktemp("app"), facades_checkpoint, colorize_checkpoint) as served:
        yield served


@pytest.fixture(scope="module")
def client(app):
    return app_client(app[0])


# ------------------------------------------------------------------------------------------ inference
def test_app_starts_quickly(app):
    assert app[1]["startup_seconds"] < 30  # generous on a loaded CI machine; ~3-8 s here


def test_facade_returns_photo_of_the_label_map_size(client, tmp_path):
    label_map = random_label_map(np.random.default_rng(0), 96).resize((120, 80), Image.NEAREST)
    photo = Image.open(client.predict(handle_file(save(label_map, tmp_path / "map.png")), api_name="/facade"))
    assert photo.size == (120, 80)
    assert photo.mode == "RGB"


def test_facade_output_depends_on_label_map_and_seed(client, tmp_path):
    first = save(random_label_map(np.random.default_rng(1), 128), tmp_path / "a.png")
    second = save(Image.new("RGB", (128, 128), (0, 0, 170)), tmp_path / "b.png")  # all one class

    def run(path, seed=0):
        return np.asarray(Image.open(client.predict(handle_file(path), "", seed, api_name="/facade")), np.float32)

    photo_a, photo_b = run(first), run(second)
    assert np.abs(photo_a - photo_b).mean() > 1.0, "different label maps gave the same photo"
    assert np.array_equal(photo_a, run(first)), "the same seed must give the same photo"
    assert np.abs(photo_a - run(first, seed=1)).mean() > 0.01, "a new seed must give a new variation"


def test_facade_reads_a_class_id_map_as_its_colours(client, tmp_path):
    """/facade given CMP's indexed ids 1..12 (with a palette of their own) draws the colour map's photo."""
    from pix2pix_core.palette import clean_label_ids

    colour = random_label_map(np.random.default_rng(5), 96)
    indexed = Image.fromarray((clean_label_ids(colour) + 1).astype(np.uint8), "P")
    indexed.putpalette([0, 0, 0] + [value for k in range(12) for value in (k, k, k)])

    def run(image, name):
        return np.asarray(Image.open(client.predict(handle_file(save(image, tmp_path / name)), "", 3,
                                                    api_name="/facade")))

    assert np.array_equal(run(indexed, "cmp.png"), run(colour, "colour.png"))


def test_colorize_keeps_the_original_size(client, tmp_path):
    yy, xx = np.mgrid[0:200, 0:300]
    photo = np.stack([xx % 256, yy % 256, (xx + yy) % 256], -1).astype(np.uint8)
    path = save(Image.fromarray(photo), tmp_path / "photo.jpg", quality=90)
    result = Image.open(client.predict(handle_file(path), api_name="/colorize"))
    assert result.size == (300, 200)
    assert result.mode == "RGB"


def test_unknown_model_name_is_refused(client, tmp_path):
    path = save(Image.new("RGB", (64, 64), (0, 0, 170)), tmp_path / "m.png")
    with pytest.raises(AppError, match="unknown model '../../etc/passwd'"):
        client.predict(handle_file(path), "../../etc/passwd", 0, api_name="/facade")  # a name, never a path
    with pytest.raises(AppError, match="not of the facades task"):
        client.predict(handle_file(path), "colorize_tiny", 0, api_name="/facade")


def test_translate_model_may_be_left_out(client, tmp_path):
    """The README's `model` of /translate: "" = the first. Started without models of your own data, the app
    made it a required argument: a call without it failed in gradio_client ("No value provided for required
    argument: model") instead of translating with the first model, or saying there is none yet."""
    endpoints = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    for name in ("/translate", "/translate_unpaired"):
        (model,) = [p for p in endpoints[name]["parameters"] if p["parameter_name"] == "model"]
        assert model["parameter_has_default"], name
    picture = save(Image.new("RGB", (40, 30), (120, 90, 60)), tmp_path / "a.png")
    for name in ("/translate", "/translate_unpaired"):
        with pytest.raises(AppError, match="no model trained on your own data yet"):
            client.predict(handle_file(picture), api_name=name)


# ------------------------------------------------------------------------------------------ messages
def test_a_name_with_markup_comes_back_to_api_clients_as_sent(client, app, tmp_path):
    """A typed folder 'a</b>' came back as 'a&lt;b&gt;': the path cutter took its '/b' for a server path, and the
    message was HTML-escaped for every reader, API clients too (escaping is for the page's toast)."""
    with pytest.raises(AppError) as error:
        client.predict(task="facades", data_folder="a</b>", api_name="/train_start")
    assert "dataset folder not found: 'a</b>'" in str(error.value), error.value
    event, data = http_call(app[0], "v2/train_start", json.dumps({"task": "facades", "data_folder": "<i>x</i>"}))
    assert event == "error" and "dataset folder not found: '<i>x</i>'" in json.loads(data)["error"], data
    path = save(Image.new("RGB", (64, 64), (0, 0, 170)), tmp_path / "m.png")
    with pytest.raises(AppError, match="unknown model '<b>m & n</b>'"):
        client.predict(handle_file(path), "<b>m & n</b>", 0, api_name="/facade")
    for typed in ("/etc", "/srv/my data/x"):  # a typed absolute folder came back as 'etc' and 'x'
        with pytest.raises(AppError) as error:
            client.predict(task="facades", data_folder=typed, api_name="/train_start")
        assert f"'{typed}' is outside the data root" in str(error.value), error.value


def test_the_path_cutter_keeps_the_names_users_gave():
    """A quoted '</b>' was cut to '<b>': the path cutter took its '/b' for a server path."""
    from demo.messages import MessageCleaner

    clean = MessageCleaner({Path("/srv/app/data"): ""})
    for name in ("'</b>'", "'a</b>.png'", "'<i>x</i> y'", "'x>/y'", "'a/b c/d'", "'../../etc/passwd'"):
        assert clean(f"dataset folder not found: {name}") == f"dataset folder not found: {name}", name
    assert clean("no images in /srv/app/data/a</b> and /srv/x/y.png") == "no images in a</b> and y.png"


@pytest.mark.parametrize("message, shown", [
    ("cannot read /srv/x/</b>.png", "cannot read b>.png"),  # was 'x</b>.png': the server's x/ beside the name
    ("cannot read /srv/secret/a>b/c.png: bad", "cannot read c.png: bad"),  # was 'a>b/c.png'
    ("no images in /srv/runs/a,b/c; give another", "no images in c; give another"),  # was 'a,b/c;'
    ("skipped (/srv/runs/a(1)/b.png, /srv/c|d/e.png)", "skipped (b.png, e.png)"),  # was 'a(1)/b.png', 'c|d/e.png'
    ("dataset folder not found: '/srv/my data/x'", "dataset folder not found: 'x'"),  # was 'my data/x' whole
    ("cannot write the report in /srv/out/: full", "cannot write the report in out: full"),
])
def test_the_path_cutter_shows_only_a_paths_last_part(message, shown):
    """A server path was cut at the first '<', '>', ',', ';', '(', ')' or '|' (or a space in a quoted path), and
    the rest of it stayed beside the cut part: a server folder beside the file's name, or parts of its path."""
    from demo.messages import MessageCleaner

    assert MessageCleaner({})(message) == shown


def test_the_path_cutter_keeps_a_server_path_with_spaces_whole():
    """An unquoted server path was cut at its first space: '/srv/my data/run 1/x.png' showed as 'my data/run 1/x.png',
    the server's folders beside the file's name. The words after a path that hold a '/' are more of its folders."""
    from demo.messages import MessageCleaner

    clean = MessageCleaner({})
    assert clean("cannot read /srv/my data/run 1/x.png: bad") == "cannot read x.png: bad"
    assert clean("no images in /srv/my data/run 1/my secret folder (it has train/: pairs)") == \
        "no images in my secret folder (it has train/: pairs)"
    assert clean("skipped /srv/my data/a photo.png, /srv/my data.") == "skipped a photo.png, my data."
    assert clean("no images in /srv/my data/run 1 and /srv/x/y") == "no images in run 1 and y"


def test_the_path_cutter_looks_nothing_up_on_the_server(tmp_path):
    """The cutter once looked a path's words up on the server to find where a name with spaces ends: "unknown preset
    'x /srv/My Docs/y'" came back 'x y' where the server has a folder '/srv/My Docs' and 'x My Docs/y' where it has
    none, an answer to whether any folder exists. Now the answer is the same either way, quoted or not."""
    from demo.messages import MessageCleaner

    (tmp_path / "My Secret").mkdir()
    (tmp_path / "My Secret" / "a b").write_bytes(b"")
    clean = MessageCleaner({})
    for value in (f"x {tmp_path}/{{}}/y", f"x' {tmp_path}/{{}}/y", f"{tmp_path}/{{}}/a b c"):
        shown = {clean(f"unknown preset {value.format(folder)!r}; choose one") for folder in ("My Secret", "My Other")}
        shown |= {clean(f"cannot read {value.format(folder)}: bad") for folder in ("My Secret", "My Other")}
        assert len(shown) == 2 and not any("Secret" in text or "Other" in text for text in shown), shown


def test_a_value_the_user_typed_is_shown_as_typed(tmp_path):
    """A typed absolute folder '/etc' came back as "'etc' is outside the data root": the path cutter took the user's
    own text for a server path. Echoing back what a user typed tells nothing about the server (the refusal goes to
    that user only); any other path in the message is still cut."""
    import html

    from demo import ui
    from demo.dataset_line import dataset_summary
    from demo.messages import MessageCleaner, TypedTextError
    from demo.state import AppState
    from pix2pix_core.errors import Pix2PixError

    typed = "/srv/app/data/../my x"
    refusal = TypedTextError(f"'{typed}' is outside; see /srv/app/data/a/b.png and /srv/other/y.png", typed)
    assert MessageCleaner({Path("/srv/app/data"): ""})(refusal) == f"'{typed}' is outside; see a/b.png and y.png"
    state = AppState(tmp_path / "checkpoints", tmp_path / "data", tmp_path / "runs", device="cpu")
    with pytest.raises(Pix2PixError) as refused:
        state.data_folder("/etc")
    assert ui.as_text(refused.value).startswith("'/etc' is outside the data root")
    assert "'/etc' is outside the data root" in html.unescape(dataset_summary(state, "facades", "/etc"))


def test_library_messages_name_the_tasks_as_the_page_does(tmp_path):
    """Library messages name tasks as the command line does ("for the paired task", "--task aligned"); the Train tab
    calls them 'Custom: A/ and B/ folders', 'Custom: A|B images'... Every cleaner of the page's messages says
    the form's names; a task name a user sent stays as sent. API clients keep the command line's names."""
    from conftest import write_collection
    from demo import ui
    from demo.dataset_line import dataset_summary
    from demo.messages import PLAIN_TEXT_READER
    from demo.state import AppState

    facades, aligned, paired = "'Facades: labels → photo'", "'Custom: A|B images'", "'Custom: A/ and B/ folders'"
    colorize, unpaired = "'Colorize: gray → colour'", "'Unpaired (CycleGAN)'"
    for cli, page in [("no images (it holds A/ and B/: paired data, for the paired task)",
                       f"no images (it holds A/ and B/: paired data, for the task {paired})"),
                      ("(it has train/: A|B pairs or photos, for the facades, aligned or colorize task)",
                       f"(it has train/: A|B pairs or photos, for the tasks {facades}, {aligned} or {colorize})"),
                      ("trainA/ and trainB/: unpaired collections, for the unpaired (CycleGAN) task",
                       f"trainA/ and trainB/: unpaired collections, for the task {unpaired}"),
                      ("is --task facades right? (pairs: --task facades or aligned)",
                       f"is the task {facades} right? (pairs: the tasks {facades} or {aligned})"),
                      ("unknown task 'paired'; choose one of facades, colorize, aligned, paired, unpaired",
                       "unknown task 'paired'; choose one of facades, colorize, aligned, paired, unpaired")]:
        assert ui.CLEAN(cli) == page, cli
        token = PLAIN_TEXT_READER.set(True)  # an API client: /train_start takes the command line's names
        try:
            assert ui.CLEAN(cli) == cli
        finally:
            PLAIN_TEXT_READER.reset(token)
    state = AppState(tmp_path / "checkpoints", tmp_path / "data", tmp_path / "runs", device="cpu")
    assert state.clean("run failed: no images (it holds A/ and B/: paired data, for the paired task)") == \
        f"run failed: no images (it holds A/ and B/: paired data, for the task {paired})"  # the job's status
    for side in "AB":  # a paired dataset one folder down
        write_collection(tmp_path / "data" / "wrap" / "inner" / "train" / side, 1, (200, 60, 40), seed=1)
    line = dataset_summary(state, "facades", "wrap")
    assert "inner/ holds A/ and B/" in line and "Custom: A/ and B/ folders" in line and "paired task" not in line


def test_messages_are_escaped_for_anyone_but_an_api_client():
    from demo.event_requests import sent_by_api_client
    from demo.messages import PLAIN_TEXT_READER, for_reader

    assert for_reader("'<b>x</b>' & y") == "'&lt;b&gt;x&lt;/b&gt;' &amp; y"  # outside any event: the page's
    token = PLAIN_TEXT_READER.set(True)
    try:
        assert for_reader("'<b>x</b>' & y") == "'<b>x</b>' & y"
    finally:
        PLAIN_TEXT_READER.reset(token)

    class Request:
        def __init__(self, headers):
            self.headers = headers

    assert sent_by_api_client(Request({"x-gradio-user": "api"}), False)
    assert sent_by_api_client(Request({}), True)  # Gradio's HTTP call/ routes
    assert not sent_by_api_client(Request({"x-gradio-user": "app"}), False)  # the app's own page
    assert not sent_by_api_client(Request({}), False) and not sent_by_api_client(None, False)


# ------------------------------------------------------------------------------------------ hostile input
def png_with_header_size(width: int, height: int) -> bytes:
    """A tiny valid PNG whose header claims width x height: a decompression bomb for any decoder."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def truncated_png() -> bytes:
    import io

    buffer = io.BytesIO()
    random_label_map(np.random.default_rng(2), 64).save(buffer, format="PNG")
    return buffer.getvalue()[: len(buffer.getvalue()) // 2]


HOSTILE = {
    "zero_bytes.png": (b"", "empty file"),
    "text.jpg": (b"this is not a picture at all" * 10, "not an image"),
    "truncated.png": (truncated_png(), "corrupt or truncated|not an image"),
    "bomb.png": (png_with_header_size(20000, 20000), "above the limit"),
}


@pytest.mark.parametrize("endpoint", ["/facade", "/colorize"])
@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_image_gives_clear_error_and_server_keeps_serving(client, tmp_path, endpoint, name):
    content, message = HOSTILE[name]
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(AppError, match=message) as error:
        client.predict(handle_file(path), api_name=endpoint)
    assert "Traceback" not in str(error.value) and "gradio" not in str(error.value).lower()
    good = save(random_label_map(np.random.default_rng(3), 64), tmp_path / "good.png")
    assert Image.open(client.predict(handle_file(good), api_name=endpoint)).size == (64, 64)


def odd_images() -> dict[str, tuple[Callable[[Path], None], tuple[int, int]]]:
    """Valid but unusual files: name -> (writer(path), the (width, height) the result must have)."""
    def gradient(width, height):
        yy, xx = np.mgrid[0:height, 0:width]
        return np.stack([xx * 255 // max(width, 1), yy * 255 // max(height, 1), (xx + yy) % 256], -1).astype(np.uint8)

    def exif_rotated(path):  # stored 40x24, orientation 6 = rotate 90 degrees: shown 24x40
        exif = Image.Exif()
        exif[0x0112] = 6
        Image.fromarray(gradient(40, 24)).save(path, exif=exif, quality=90)

    def animated(path):
        frames = [Image.fromarray(gradient(30, 20)).convert("P"), Image.new("P", (30, 20))]
        frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)

    return {
        "gray16.png": (lambda p: Image.fromarray((gradient(33, 21)[..., 0].astype(np.uint16) * 257)).save(p), (33, 21)),
        "cmyk.jpg": (lambda p: Image.fromarray(gradient(40, 30)).convert("CMYK").save(p), (40, 30)),
        "one_pixel.png": (lambda p: Image.new("RGB", (1, 1), (200, 10, 10)).save(p), (1, 1)),
        "tall.png": (lambda p: Image.new("L", (3, 5000), 128).save(p), (3, 5000)),
        "transparent.png": (lambda p: Image.new("RGBA", (20, 20), (0, 0, 0, 0)).save(p), (20, 20)),
        "binary.png": (lambda p: Image.new("1", (17, 9), 1).save(p), (17, 9)),
        "exif_rotated.jpg": (exif_rotated, (24, 40)),
        "animated.gif": (animated, (30, 20)),
        "photo.webp": (lambda p: Image.fromarray(gradient(28, 36)).save(p), (28, 36)),
        "photo.tiff": (lambda p: Image.fromarray(gradient(25, 15)).save(p), (25, 15)),
    }


@pytest.mark.parametrize("endpoint", ["/facade", "/colorize"])
@pytest.mark.parametrize("name", list(odd_images()))
def test_odd_but_valid_images_work_at_their_size(client, tmp_path, endpoint, name):
    write, size = odd_images()[name]
    path = tmp_path / name
    write(path)
    result = Image.open(client.predict(handle_file(path), api_name=endpoint))
    assert result.size == size and result.mode == "RGB"


def test_upload_size_limit(app, tmp_path):
    """Files above the app's max_file_size are refused by the server before any handler runs."""
    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG" + os.urandom(51 * 1024 * 1024))
    with pytest.raises(Exception, match="(?i)size|large|413"):
        app_client(app[0]).predict(handle_file(big), api_name="/facade")


# ------------------------------------------------------------------------------------------ training
def test_train_stop_when_idle_is_harmless(client):
    status = client.predict(api_name="/train_status")
    if not status["running"]:
        assert client.predict(api_name="/train_stop") == "No training run is going."
    assert client.predict(api_name="/train_status")["running"] is False


@pytest.mark.parametrize("folder", ["/etc", "../../", "/tmp"])
def test_dataset_folder_must_be_inside_the_data_root(client, folder):
    with pytest.raises(AppError, match="outside the data root"):
        client.predict(task="facades", data_folder=folder, api_name="/train_start")


def test_symlink_out_of_the_data_root_is_refused(client, app):
    link = app[1]["data"] / "escape"
    link.symlink_to("/etc", target_is_directory=True)
    with pytest.raises(AppError, match="outside the data root"):
        client.predict(task="facades", data_folder="escape", api_name="/train_start")


def make_zip(path: Path, members: dict[str, bytes]) -> Path:
    import zipfile

    with zipfile.ZipFile(path, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return path


@pytest.mark.parametrize("members, message", [
    ({"../escape.jpg": b"x"}, "unsafe path"),
    ({"/etc/evil.jpg": b"x"}, "unsafe path"),
    ({"notes.txt": b"no images here"}, "holds no image files"),
])
def test_bad_dataset_zip_is_refused(client, tmp_path, members, message):
    archive = make_zip(tmp_path / "data.zip", members)
    with pytest.raises(AppError, match=message):
        client.predict(task="aligned", data_folder="", data_zip=handle_file(archive), api_name="/train_start")
    assert client.predict(api_name="/train_status")["running"] is False


def test_zip_bomb_is_refused(client, tmp_path):
    """1.1 GB of zeros compresses to ~1 MB; the declared size is checked before anything is written."""
    import zipfile

    path = tmp_path / "bomb.zip"
    chunk = b"\0" * (1 << 20)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        with archive.open("big.png", "w", force_zip64=True) as member:
            for _ in range(1100):
                member.write(chunk)
    with pytest.raises(AppError, match="above the limit"):
        client.predict(task="aligned", data_zip=handle_file(path), api_name="/train_start")


def test_training_run_lifecycle(client, app, tmp_path):
    """Start (with the DiffAugment box ticked), refuse a second start, serve inference meanwhile, stop, and
    use the new model."""
    started = client.predict(task="facades", data_folder="facades", preset="Quick demo", epochs=50,
                             diff_augment=True, api_name="/train_start")
    assert started.startswith("Started facades-")
    with pytest.raises(AppError, match="already going"):
        client.predict(task="facades", data_folder="facades", api_name="/train_start")

    label_map = save(random_label_map(np.random.default_rng(4), 64), tmp_path / "m.png")
    assert Image.open(client.predict(handle_file(label_map), api_name="/facade")).size == (64, 64)

    running = wait_for_status(client, lambda s: s["step"] >= 2)
    assert running["running"] and set(running["losses"]) == {"G_GAN", "G_L1", "D_real", "D_fake", "G_feat"}
    assert client.predict(api_name="/train_stop").startswith("Stopping")
    ended = wait_for_status(client, lambda s: not s["running"])
    assert ended["phase"] == "stopped", ended
    assert ended["model"] == ended["run"]
    exported = app[1]["runs"] / "models" / f"{ended['model']}.safetensors"
    assert config_of(read_header(exported)).diff_augment == "translation,cutout"

    photo = client.predict(handle_file(label_map), ended["model"], 0, api_name="/facade")
    assert Image.open(photo).size == (64, 64)
    assert client.predict(api_name="/train_stop") == "No training run is going."


def test_bad_training_settings_give_clear_errors(client):
    with pytest.raises(AppError, match="dataset folder not found"):
        client.predict(task="facades", data_folder="missing", api_name="/train_start")
    with pytest.raises(AppError, match=r"'Preset': 'Turbo' is not one of the choices \('Quick demo', "):
        client.predict(task="facades", preset="Turbo", api_name="/train_start")
    with pytest.raises(AppError, match="give a dataset folder"):
        client.predict(task="aligned", api_name="/train_start")
    with pytest.raises(AppError, match="DiffAugment is for pix2pix runs"):
        client.predict(task="unpaired", data_folder="facades", diff_augment=True, api_name="/train_start")


def test_fine_tune_a_model_keeps_its_architecture(client, app, tmp_path):
    """Fine-tuning takes netG/ngf/size from the chosen model, whatever the preset says."""
    started = client.predict(task="facades", data_folder="facades", preset="Standard (paper)", ngf=64,
                             start_from="facades_tiny", api_name="/train_start")
    assert started.startswith("Started")
    wait_for_status(client, lambda s: s["step"] >= 1)
    client.predict(api_name="/train_stop")
    ended = wait_for_status(client, lambda s: not s["running"])
    assert ended["phase"] == "stopped", ended
    tuned = config_of(read_header(app[1]["runs"] / "models" / f"{ended['model']}.safetensors"))
    base = config_of(read_header(app[1]["checkpoints"] / "facades_tiny.safetensors"))
    assert (tuned.netG, tuned.ngf, tuned.crop_size) == (base.netG, base.ngf, base.crop_size) == ("unet_128", 8, 128)
    label_map = save(random_label_map(np.random.default_rng(6), 64), tmp_path / "m.png")
    assert Image.open(client.predict(handle_file(label_map), ended["model"], 0, api_name="/facade")).size == (64, 64)


def test_unpaired_run_then_translate_both_ways(client, app, tmp_path):
    """An Unpaired (CycleGAN) run on a trainA/ trainB/ folder plots CycleGAN's losses, and its model
    translates A -> B and B -> A through /translate_unpaired."""
    from pix2pix_core.cyclegan_model import CycleGAN

    folder = app[1]["data"] / "red2blue"
    write_collection(folder / "trainA", 3, (200, 40, 40), seed=1)
    write_collection(folder / "trainB", 2, (40, 40, 200), seed=2)
    started = client.predict(task="unpaired", data_folder="red2blue", preset="Quick demo", epochs=2,
                             epochs_decay=0, ngf=4, api_name="/train_start")
    assert started.startswith("Started unpaired-")
    ended = wait_for_status(client, lambda s: not s["running"], timeout=180)
    assert ended["phase"] == "finished" and ended["step"] == 6, ended
    assert ended["model"] == ended["run"]
    job = client.predict(api_name="/train_status")
    assert set(job["losses"]) == set(CycleGAN.LOSS_NAMES)

    picture = save(Image.new("RGB", (50, 30), (200, 40, 40)), tmp_path / "a.png")
    there = Image.open(client.predict(handle_file(picture), ended["model"], "AtoB", api_name="/translate_unpaired"))
    back = Image.open(client.predict(handle_file(picture), ended["model"], "BtoA", api_name="/translate_unpaired"))
    assert there.size == back.size == (50, 30)
    assert np.abs(np.asarray(there, np.int16) - np.asarray(back, np.int16)).max() > 0  # two generators
    with pytest.raises(AppError, match="is a model of the facades task: use it in its own tab"):
        client.predict(handle_file(picture), "facades_tiny", "AtoB", api_name="/translate_unpaired")
    with pytest.raises(AppError, match="not one of the choices"):
        client.predict(handle_file(picture), ended["model"], "sideways", api_name="/translate_unpaired")


def test_a_custom_pix2pix_model_trained_here_translates_in_the_translate_section(client, app, tmp_path):
    """A model of task "Custom: A|B images" (or A/ and B/ folders) was exported into the app's models and
    appeared nowhere: the Facades and Colorize tabs take their own tasks only. /translate (the Translate section)
    runs it the way it was trained; the direction is a CycleGAN's choice."""
    write_aligned(app[1]["data"] / "pairs_for_translate" / "train", 4, seed=7)
    started = client.predict(task="aligned", data_folder="pairs_for_translate", preset="Quick demo", epochs=1,
                             epochs_decay=0, ngf=4, api_name="/train_start")
    assert started.startswith("Started")
    ended = wait_for_status(client, lambda s: not s["running"], timeout=180)
    assert ended["phase"] == "finished", ended
    picture = save(Image.new("RGB", (70, 40), (120, 90, 60)), tmp_path / "a.png")
    out = Image.open(client.predict(handle_file(picture), ended["model"], "AtoB", api_name="/translate"))
    assert out.size == (70, 40)
    assert Image.open(client.predict(handle_file(picture), api_name="/translate")).size == (70, 40)  # the first
    with pytest.raises(AppError, match="a pix2pix model: it translates one way"):
        client.predict(handle_file(picture), ended["model"], "BtoA", api_name="/translate")
    with pytest.raises(AppError, match="a model of the aligned task, not of the unpaired .CycleGAN. task; the "
                                       "translate endpoint"):
        client.predict(handle_file(picture), ended["model"], "AtoB", api_name="/translate_unpaired")
    with pytest.raises(AppError, match="is a model of the facades task: use it in its own tab"):
        client.predict(handle_file(picture), "facades_tiny", "AtoB", api_name="/translate")


@pytest.fixture(scope="module")
def stopped_app(tmp_path_factory, facades_checkpoint, colorize_checkpoint) -> dict:
    """One app, stopped with SIGTERM after three /facade and three /colorize calls (an app start and stop take
    20 s here), and what was in its temp folder and Gradio's cache while it ran and after: two tests read them."""
    folder = tmp_path_factory.mktemp("stopped_app")
    temp, cache = folder / "tmp", folder / "app" / "gradio"  # running_app's GRADIO_TEMP_DIR
    temp.mkdir()
    label_map = save(random_label_map(np.random.default_rng(0), 64), folder / "map.png")
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("TMPDIR", str(temp))
        with running_app(folder / "app", facades_checkpoint, colorize_checkpoint, graceful_stop=True) as (url, _):
            outputs_while_running = list(temp.glob("pix2pix-studio-outputs-*"))
            client = app_client(url)
            for seed in range(3):
                client.predict(handle_file(str(label_map)), "", seed, api_name="/facade")
                client.predict(handle_file(str(label_map)), "", seed, api_name="/colorize")
            served = {path.parent.name for path in cache.rglob("*")
                      if path.name.startswith(("map", "photo", "colorized"))}
    return {"outputs_while_running": outputs_while_running,
            "outputs_after": list(temp.glob("pix2pix-studio-outputs-*")), "served": served,
            "served_after": sorted(path.name for path in cache.iterdir() if path.name in served)}


def test_a_stopped_app_leaves_no_result_files_behind(stopped_app):
    """`kill` (SIGTERM: systemd, docker stop) ended the app at once, without its exit handlers: the folder of its
    result files stayed in the temp folder at every stop. It stops as Ctrl-C does now."""
    assert stopped_app["outputs_while_running"]
    assert stopped_app["outputs_after"] == []


def test_a_stopped_app_leaves_nothing_of_its_requests_in_gradios_cache(stopped_app):
    """Gradio deletes its cached uploads and results when it stops, but waits only 5 s for its server to stop, and
    with this client it took longer: the shutdown was cut off before it deleted them. Every stop left the last hour's
    uploads and results (and their folders) in Gradio's cache folder for good: a new app does not know them."""
    # the label map's upload, three photos, three colorized
    assert len(stopped_app["served"]) == 7, stopped_app["served"]
    assert stopped_app["served_after"] == []


@pytest.mark.parametrize("device, words", [("gpu", "unknown device 'gpu': use auto, cpu, cuda, cuda:N or mps"),
                                           ("cuda:99", "device cuda:99: ")])
def test_build_app_refuses_a_device_it_cannot_use(tmp_path, monkeypatch, device, words):
    """build_app(device=...) took any device: only demo/server.py's --device was checked, so an app built
    directly started, and every request failed with the device's one-line error. Now it is refused at once,
    before any folder is made."""
    from demo.app import build_app
    from pix2pix_core.errors import Pix2PixError

    monkeypatch.setattr("torch.cuda.is_available", lambda: True)  # cuda:99 is absent with or without a GPU
    monkeypatch.setattr("torch.cuda.device_count", lambda: 1)
    with pytest.raises(Pix2PixError, match="^" + words):
        build_app(tmp_path / "checkpoints", tmp_path / "data", tmp_path / "runs", device=device)
    assert list(tmp_path.iterdir()) == []
