"""Issue 15: bounded resources for any input, one test (or more) per finding, against a live app.

The app runs with tiny models and a training memory budget of 0.5 GB, so the paper's 54 M-parameter
generator is refused by the estimate while the Quick demo fits. Unit tests of the pieces come last.
"""

from __future__ import annotations

import io
import json
import math
import os
import threading
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import random_label_map, write_aligned
from app_helpers import ODD_WIDTHS, app_client, http_call, odd_width_dataset, running_app, save, wait_for_status

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402


@pytest.fixture(scope="module")
def app(tmp_path_factory, facades_checkpoint, colorize_checkpoint):
    with running_app(tmp_path_factory.mktemp("limits_app"), facades_checkpoint, colorize_checkpoint,
                     extra_args=("--train-memory-gb", "0.5")) as served:
        yield served


@pytest.fixture(scope="module")
def client(app):
    return app_client(app[0])


def start(client, **settings):
    return client.predict(**{"task": "facades", "data_folder": "facades", **settings}, api_name="/train_start")


def refused(client, match: str, api_name: str = "/train_start", *args, **settings) -> str:
    """Call and expect a one-line AppError matching `match`, with no server path and no traceback."""
    with pytest.raises(AppError, match=match) as error:
        if args:
            client.predict(*args, api_name=api_name)
        else:
            start(client, **settings)
    message = str(error.value)
    assert "Internal error" not in message and "Traceback" not in message
    assert "/tmp/" not in message and str(Path.home()) not in message, message
    assert len(message) <= 400, f"message of {len(message)} characters"
    return message


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def jpeg(size=(128, 64)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (120, 40, 200)).save(buffer, format="JPEG")
    return buffer.getvalue()


def assert_idle(client) -> dict:
    status = client.predict(api_name="/train_status")
    assert status["running"] is False, status
    return status


# ------------------------------------------------------------------------------ finding 1: caps, memory, stop
@pytest.mark.parametrize("settings, match", [
    (dict(ngf=512), "ngf must be between 1 and 128"),
    (dict(batch_size=10 ** 9), "batch size must be between 1 and 64"),
    (dict(batch_size=0), "batch size must be between"),
    (dict(epochs=-1), "epochs must be between"),
    (dict(lr=0), "learning rate must be in"),
    (dict(lambda_l1=1e9), "lambda L1 must be in"),
    (dict(epochs=0, epochs_decay=0), "at least one epoch"),
    (dict(epochs=2.5), "whole number"),
])
def test_out_of_range_settings_are_refused(client, settings, match):
    refused(client, match, **settings)
    assert_idle(client)


def test_a_run_over_the_memory_budget_is_refused_with_numbers(client):
    """The paper's preset at ngf 128 (finding 1's kind of request): ~4 GB estimated against a 0.5 GB budget."""
    message = refused(client, r"would need about [\d.]+ GB \(networks [\d.]+ GB.*above the memory budget of 0.50 GB",
                      preset="Standard (paper)", ngf=128)
    assert "batch size" in message
    assert_idle(client)


def test_stop_while_loading_ends_the_run_at_once(client, app):
    """Stop while the dataset loads (100 pairs of 2048x1024 take seconds to decode) ends the run at once."""
    folder = app[1]["data"] / "slow" / "train"
    folder.mkdir(parents=True)
    for i in range(100):
        Image.new("RGB", (2048, 1024), (i, 50, 100)).save(folder / f"{i}.jpg", quality=90)
    assert start(client, data_folder="slow", epochs=500).startswith("Started")
    assert client.predict(api_name="/train_stop").startswith("Stopping")
    started = time.perf_counter()
    ended = wait_for_status(client, lambda s: not s["running"], timeout=60)
    assert time.perf_counter() - started < 30
    assert ended["phase"] == "stopped" and ended["step"] == 0, ended
    assert "before a training step" in ended["message"]


# ------------------------------------------------------------------------------ finding 3: endless runs, status
@pytest.mark.parametrize("epochs", [1e300, 10 ** 400, "100", [1]])
def test_absurd_epochs_are_refused_and_status_keeps_working(client, epochs):
    refused(client, "epochs must", epochs=epochs)
    status = assert_idle(client)
    json.dumps(status, allow_nan=False)  # every number finite


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_from_raw_clients_are_refused(app, client, value):
    settings = (f'["facades", "facades", "BtoA", "Quick demo", {value}, 0, 1, 100, 0.0002, 16, "from scratch", '
                'null, false]')
    event, data = http_call(app[0], "train_start", f'{{"data": {settings}}}')
    assert event == "error" and "epochs must be a finite number" in data, (event, data)
    json.dumps(assert_idle(client), allow_nan=False)


def test_a_run_too_long_in_steps_is_refused(client, app):
    """Within the epoch caps, but batches x epochs above the app's step cap: 1000 + 1000 epochs of 1200 steps."""
    write_aligned(app[1]["data"] / "many" / "train", 1200, size=16)
    refused(client, r"would take 2,400,000 steps", data_folder="many", preset="Standard (paper)", epochs=1000,
            epochs_decay=1000, ngf=8)


APP_FOLDERS: dict = {}


@pytest.fixture(scope="module", autouse=True)
def _remember_folders(app):
    APP_FOLDERS.update(app[1])


# ------------------------------------------------------------------------------ finding 4: no HTML from users
def test_markup_in_a_zip_folder_name_comes_back_as_text_without_server_paths(client, tmp_path):
    """An API client gets the name as it is (the page gets it escaped: test_app_browser's markup test)."""
    markup = '<img src="http://127.0.0.1:9/x.png"> <a href="http://127.0.0.1:9">Click to log in</a>'
    archive = tmp_path / "data.zip"
    archive.write_bytes(zip_bytes({f"{markup.replace('/', '_')}/A/1.jpg": jpeg()}))
    message = refused(client, "paired data needs sub-folders", task="paired", data_folder="",
                      data_zip=handle_file(archive))
    assert '<img src="http:__127.0.0.1:9_x.png">' in message and "&lt;" not in message
    assert str(APP_FOLDERS["runs"]) not in message
    assert_idle(client)


# ------------------------------------------------------------------------------ finding 5: large images
def big_png(path: Path, width: int, height: int) -> Path:
    Image.new("RGB", (width, height), (0, 0, 170)).save(path)  # one colour: a small file, many pixels
    return path


@pytest.mark.parametrize("endpoint", ["/facade", "/colorize"])
def test_images_above_the_app_limit_are_refused_quickly(client, tmp_path, endpoint):
    path = big_png(tmp_path / "huge.png", 4000, 3500)  # 14 MP: under the CLI's 50 MP, over the app's 12 MP
    started = time.perf_counter()
    refused(client, "above the limit of 12,000,000", endpoint, handle_file(path))
    assert time.perf_counter() - started < 10


def test_an_overlong_side_is_refused_quickly_everywhere(app, client, tmp_path):
    """1 MP in a 1,000,000 x 1 PNG of 3 KB took 64 s and 17.5 GB to colorize (work that grows with a side,
    not the pixel count), and sides above JPEG's 65,535 px failed only when the result was saved: every
    image input now refuses a side above 16,384 px from the header, in one line."""
    path = big_png(tmp_path / "line.png", 20_000, 1)
    for endpoint in ("/facade", "/colorize"):
        started = time.perf_counter()
        message = refused(client, "line.png is 20000x1: its longest side is above 16,384 px", endpoint,
                          handle_file(path))
        assert time.perf_counter() - started < 10, message
    config = json.loads(urllib.request.urlopen(f"{app[0]}config", timeout=30).read())
    tall = upload_file(app[0], png_bytes(Image.new("RGB", (1, 20_000))), "tall.png")
    reply = queue_call(app[0], page_event(config, "colorize-input", "upload"), [tall, None, 0])
    assert "tall.png is 1x20000: its longest side is above 16,384 px" in reply
    reply = queue_call(app[0], page_event(config, "translate-button", "click"), [tall, "", "AtoB"])
    assert "its longest side is above 16,384 px" in reply
    strip = upload_file(app[0], png_bytes(Image.new("RGB", (20_000, 4), (0, 0, 255))), "bg.png")  # 80,000 px
    canvas = page_event(config, "facade-canvas", "input")
    reply = queue_call(app[0], canvas, [{"background": strip, "layers": [], "composite": strip, "id": None}, None, 0])
    assert "a canvas image is above 0.26 megapixels or 16,384 px a side" in reply
    assert_idle(client)


def test_large_results_come_back_as_jpeg_at_full_size(client, tmp_path):
    path = big_png(tmp_path / "large.png", 2400, 1800)  # 4.3 MP: the large lane, JPEG out
    result = client.predict(handle_file(path), api_name="/colorize")
    assert Path(result).suffix == ".jpg"
    with Image.open(result) as image:
        assert image.format == "JPEG" and image.size == (2400, 1800)
    assert os.path.getsize(result) < 3_000_000


def test_small_results_stay_png(client, tmp_path):
    path = save(random_label_map(np.random.default_rng(7), 64), tmp_path / "m.png")
    with Image.open(client.predict(handle_file(path), api_name="/facade")) as image:
        assert image.format == "PNG"


def test_identical_concurrent_requests_both_get_complete_images(client, app, tmp_path):
    path = save(random_label_map(np.random.default_rng(8), 200), tmp_path / "same.png")
    results: list = [None, None]

    def call(index):
        results[index] = app_client(app[0]).predict(handle_file(path), api_name="/facade")

    threads = [threading.Thread(target=call, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    arrays = []
    for result in results:
        with Image.open(result) as image:
            image.load()  # a truncated file fails here
            arrays.append(np.asarray(image))
    assert np.array_equal(*arrays)


# ------------------------------------------------------------------------------ finding 6: disk
def test_an_unpacked_upload_is_deleted_when_its_run_ends(client, tmp_path):
    members = {}
    for path in sorted(write_aligned(tmp_path / "pairs", 4).iterdir()):
        members[f"pairs/{path.name}"] = path.read_bytes()
    archive = tmp_path / "pairs.zip"
    archive.write_bytes(zip_bytes(members))
    assert start(client, data_folder="", data_zip=handle_file(archive), epochs=500).startswith("Started")
    wait_for_status(client, lambda s: s["step"] >= 1 or not s["running"])
    client.predict(api_name="/train_stop")
    wait_for_status(client, lambda s: not s["running"])
    uploads = APP_FOLDERS["runs"] / "uploads"
    assert not uploads.exists() or not any(uploads.iterdir())


def test_a_refused_upload_is_deleted_at_once(client, tmp_path):
    archive = tmp_path / "ok.zip"
    archive.write_bytes(zip_bytes({"pairs/1.jpg": jpeg()}))
    refused(client, "above the memory budget", data_folder="", data_zip=handle_file(archive),
            preset="Standard (paper)", ngf=128)
    uploads = APP_FOLDERS["runs"] / "uploads"
    assert not uploads.exists() or not any(uploads.iterdir())


# ------------------------------------------------------------------------------ finding 7: odd names and numbers
@pytest.mark.parametrize("members, match", [
    ({"x" * 300 + ".jpg": b"1"}, "too long"),
    ({"a.jpg": b"1", "a.jpg/b.jpg": b"2"}, "both a file and a folder"),
    ({"d" * 300 + "/a.jpg": b"1"}, "too long"),
])
def test_odd_zip_member_names_give_clear_errors(client, tmp_path, members, match):
    archive = tmp_path / "odd.zip"
    archive.write_bytes(zip_bytes(members))
    refused(client, match, task="aligned", data_folder="", data_zip=handle_file(archive))


@pytest.mark.parametrize("folder, match", [
    ("f" * 300, "not a usable folder|not found"),
    ("bad\x00name", "not a usable folder name"),
    ("x" * 60_000, "not a usable folder name"),  # just under the request cap (demo/upload_guard.py)
])
def test_odd_folder_names_give_clear_short_errors(client, folder, match):
    refused(client, match, data_folder=folder)


def test_a_megabyte_input_is_refused_before_gradio_keeps_it(app, client):
    """Gradio kept each event's inputs per session before the handler's length check (a 300 MB folder name: 300
    MB held per session); the request cap answers it from its headers, before the body is read."""
    import http.client
    from urllib.parse import urlparse

    where = urlparse(app[0])
    for route in ("/gradio_api/queue/join", "/gradio_api/call/train_start"):
        connection = http.client.HTTPConnection(where.hostname, where.port, timeout=10)
        connection.putrequest("POST", route)
        connection.putheader("Content-Type", "application/json")
        connection.putheader("Content-Length", str(2 ** 20))
        connection.endheaders()  # no body follows: the answer must not wait for one
        reply = connection.getresponse()
        assert reply.status == 413 and "at most 64 kB" in json.loads(reply.read())["detail"]
        connection.close()
    assert_idle(client)


@pytest.mark.parametrize("endpoint", ["/facade", "/colorize"])
@pytest.mark.parametrize("seed", [2 ** 70, -1, 1e300, 0.5, "7"])
def test_odd_seeds_give_clear_errors(client, tmp_path, endpoint, seed):
    path = save(random_label_map(np.random.default_rng(9), 32), tmp_path / "m.png")
    refused(client, "seed must be", endpoint, handle_file(path), "", seed)


def test_a_long_model_name_is_not_echoed(client, tmp_path):
    path = save(random_label_map(np.random.default_rng(10), 32), tmp_path / "m.png")
    refused(client, "unknown model", "/facade", handle_file(path), "m" * 60_000, 0)


LONG = "x" * 60_000  # just under the request cap


@pytest.mark.parametrize("position, name", [(0, "task"), (2, "direction"), (3, "preset"), (10, "start_from")])
def test_a_long_choice_is_not_echoed(app, client, position, name):
    """Gradio's own choice check quoted the whole value; the Radios and Dropdowns now refuse it briefly."""
    settings = ["facades", "facades", "BtoA", "Quick demo", 20, 0, 1, 100, 0.0002, 16, "from scratch", None, False]
    settings[position] = LONG
    event, data = http_call(app[0], "train_start", json.dumps({"data": settings}))
    assert event == "error" and len(data) < 1000, (name, event, len(data))
    assert "xxxxxxxxxx" in data  # the value is quoted, shortened
    assert_idle(client)

def test_a_list_sent_for_one_choice_is_refused_briefly(app, client):
    """A list of valid choices passed the app's check: Gradio's Radio then quoted it whole (["AtoB"] x 5,000 for
    /translate's direction: a 40 kB error), and a single-valued Dropdown that takes custom names handed it to the
    handler (a model name as a list or an object: an internal TypeError, a traceback in the log per request)."""
    picture = upload_file(app[0], png_bytes(Image.new("RGB", (32, 32))), "p.png")
    for data, what in (([picture, "", ["AtoB"] * 5000], "direction"), ([picture, ["cycle"], "AtoB"], "model"),
                       ([picture, {"name": "cycle"}, "AtoB"], "model")):
        event, reply = http_call(app[0], "translate", json.dumps({"data": data}))
        assert event == "error" and len(reply) < 1000, (what, event, len(reply))
        assert "one value expected" in reply and "Internal error" not in reply, (what, reply[:300])
    settings = ["facades", "facades", "BtoA", ["Quick demo"] * 3000, 20, 0, 1, 100, 0.0002, 16, "from scratch", None,
                False]
    event, reply = http_call(app[0], "train_start", json.dumps({"data": settings}))
    assert event == "error" and "one value expected" in reply and len(reply) < 1000, (event, len(reply))
    assert_idle(client)



def queue_call(url: str, fn_index: int, data: list, event_data=None) -> str:
    """Call any event (public or not) by its fn_index as the page does; the final message's text, after the
    text of each warning or info the event showed (the Colorize tab's unusable photo is a warning)."""
    session = f"s{fn_index}{time.monotonic_ns()}"
    body = json.dumps({"data": data, "fn_index": fn_index, "session_hash": session,
                       "event_data": event_data}).encode()
    request = urllib.request.Request(f"{url}gradio_api/queue/join", data=body,
                                     headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=30).read()
    shown = []
    with urllib.request.urlopen(f"{url}gradio_api/queue/data?session_hash={session}", timeout=60) as stream:
        for line in stream:
            if line.startswith(b"data:") and b'"msg":"log"' in line:
                shown.append(str(json.loads(line[5:]).get("log")))
            if line.startswith(b"data:") and b'"process_completed"' in line:
                return "\n".join([*shown, line.decode()])
    raise AssertionError("no process_completed message")


def test_no_radio_or_dropdown_of_any_event_echoes_a_long_value(app, client):
    """Every event of the page (the API's and the page's own), each Radio or Dropdown input in turn."""
    config = json.loads(urllib.request.urlopen(f"{app[0]}config", timeout=30).read())
    kinds = {c["id"]: c["type"] for c in config["components"]}
    checked = set()
    for fn_index, dependency in enumerate(config["dependencies"]):
        inputs = dependency["inputs"]
        for position, component in enumerate(inputs):
            if kinds.get(component) not in ("radio", "dropdown"):
                continue
            data = [None] * len(inputs)
            data[position] = LONG
            reply = queue_call(app[0], dependency.get("id", fn_index), data)
            assert len(reply) < 1000, (fn_index, dependency.get("api_name"), len(reply))
            checked.add(component)
    assert len(checked) >= 7, checked  # task, preset, direction, start_from, two models, rectangle class
    assert_idle(client)


def test_every_seed_box_and_the_rectangle_click_refuse_odd_values_by_name(app, client):
    """The Facades tab's seed (a Number with a minimum and a precision) failed inside Gradio on "abc" or NaN
    with an empty "Error"; a rectangle click with an odd index was an internal ValueError."""
    config = json.loads(urllib.request.urlopen(f"{app[0]}config", timeout=30).read())
    seeds = {c["id"] for c in config["components"] if c["type"] == "number" and c["props"].get("label") == "Seed"}
    checked = 0
    for fn_index, dependency in enumerate(config["dependencies"]):
        for position, component in enumerate(dependency["inputs"]):
            if component in seeds:
                for value in ("abc", float("nan"), 0.5):
                    data = [None] * len(dependency["inputs"])
                    data[position] = value
                    reply = queue_call(app[0], dependency.get("id", fn_index), data)
                    assert "seed must be" in reply, (fn_index, value, reply[:300])
                checked += 1
    assert checked >= 4, checked  # stroke, generate, variation, colorize...
    labels = next(c["id"] for c in config["components"] if c["props"].get("elem_id") == "facade-labels")
    (fn_index, click), = [(i, d) for i, d in enumerate(config["dependencies"])
                          if labels in [t[0] for t in d["targets"]] and any(t[1] == "select" for t in d["targets"])]
    for index in ([1e30, "a"], None, "x"):
        data = [None] * len(click["inputs"])
        reply = queue_call(app[0], click.get("id", fn_index), data, {"index": index, "value": None})
        assert "click a point on the snapped label map" in reply, (index, reply[:300])
    assert_idle(client)


def test_a_long_body_of_the_wrong_shape_is_not_echoed(app, client):
    """FastAPI's validation error quotes the input: `data` must be a list."""
    request = urllib.request.Request(f"{app[0]}gradio_api/call/train_start",
                                     data=json.dumps({"data": LONG}).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        reply = urllib.request.urlopen(request, timeout=30).read()
    except urllib.error.HTTPError as error:
        reply = error.read()
    assert len(reply) < 1000, len(reply)
    assert_idle(client)


FORGED = "\nERROR pix2pix_studio: forged"  # a client's text that would start a log line of its own


def test_malformed_event_inputs_get_one_line_and_leave_no_traceback(app, client):
    """A string for a file, a path never uploaded, too few or too many inputs: Gradio refused each before any
    handler with `{"error": null}` and a traceback in the log (too few quoted every input, newlines and all)."""
    config = json.loads(urllib.request.urlopen(f"{app[0]}config", timeout=30).read())
    photo, canvas = page_event(config, "colorize-input", "upload"), page_event(config, "facade-canvas", "input")
    passwd = {"path": "/etc/passwd", "meta": {"_type": "gradio.FileData"}}
    log_path = app[1]["log"]
    logged_before = log_path.stat().st_size
    queued = [(photo, [LONG, None, 0], "input 1 (Your photo): expected an uploaded file, got a string"),
              (photo, [7, None, 0], "input 1 (Your photo): expected an uploaded file, got a number"),
              (canvas, [LONG, None, 0], "input 1 (Label map (paint here)): expected the canvas's images"),
              (photo, [passwd, None, 0], "a file that was not uploaded to this app"),
              (photo, [None, LONG + FORGED], "too few inputs: got 2, expected 3"),
              (photo, [None, None, 0, FORGED], "too many inputs: got 4, expected 3")]
    for fn_index, data, match in queued:
        reply = queue_call(app[0], fn_index, data)
        assert match in reply and len(reply) < 1000 and "forged" not in reply, (match, reply[:300])
    called = [("colorize", [LONG, "", 0], "input 1 (image): expected an uploaded file, got a string"),
              ("colorize", [{"path": "p.png"}, "", 0], "input 1 (image): expected an uploaded file, got an object "
                                                        "(The 'meta' field must be explicitly provided"),
              ("colorize", [["a.png"], "", 0], "input 1 (image): expected an uploaded file, got a list"),
              ("facade", [passwd, "", 0], "a file that was not uploaded to this app"),
              ("train_start", ["facades" + FORGED], "too few inputs: got 1, expected 13")]
    for api_name, data, match in called:
        event, reply = http_call(app[0], api_name, json.dumps({"data": data}))
        assert event == "error" and match in reply and len(reply) < 1000, (api_name, event, reply[:300])
    assert_idle(client)
    logged = log_path.read_bytes()[logged_before:].decode(errors="replace")
    assert "Traceback" not in logged and "forged" not in logged and "/etc/passwd" not in logged, logged[-3000:]
    assert logged.count("refused a malformed request") == len(queued) + len(called), logged[-3000:]
    assert max(len(line) for line in logged.splitlines()) < 400


def test_an_unknown_api_name_is_a_short_404_without_a_traceback(app):
    """Gradio's FnIndexInferError was an "Exception in ASGI application" traceback and a bare 500."""
    log_path = app[1]["log"]
    logged_before = log_path.stat().st_size
    body = b'{"data": []}'
    names = (("no_such_" + "x" * 500, "no_such_xxx"), ("forged%0AERROR%20pix2pix_studio:%20x", "forged\\\\n"))
    for name, shown in names:
        status, text = raw_post(app[0], f"/gradio_api/call/{name}", {"Content-Type": "application/json",
                                                                    "Content-Length": str(len(body))}, body)
        assert status == 404 and f"no API endpoint named '{shown}" in text and len(text) < 300, (status, text)
    logged = log_path.read_bytes()[logged_before:].decode(errors="replace")
    assert "Traceback" not in logged and "FnIndexInferError" not in logged, logged[-3000:]


def form(fields: dict, file: bytes | None = None) -> tuple[dict, bytes]:
    """Headers and body of a multipart form as the canvas sends its images (fields, then one file)."""
    parts = [f'--b\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
             for name, value in fields.items()]
    if file is not None:
        parts.append(b'--b\r\nContent-Disposition: form-data; name="files"; filename="blob"\r\n'
                     b"Content-Type: image/png\r\n\r\n" + file + b"\r\n")
    body = b"".join(parts) + b"--b--\r\n"
    return {"Content-Type": "multipart/form-data; boundary=b", "Content-Length": str(len(body))}, body


def test_raw_requests_naming_what_the_app_lacks_get_a_short_answer_without_a_traceback(app, client):
    """An fn_index with no event (queue/join, run/NAME), an unknown API name or keyword argument of `call/v2`, an
    unknown component id or a malformed form sent to `component_server`, the canvas's own refusal there: each was a
    bare 500 and a 70-80 line "Exception in ASGI application" traceback in the log; a newline in a custom
    component's path wrote a log line of the client's own."""
    config = json.loads(urllib.request.urlopen(f"{app[0]}config", timeout=30).read())
    canvas = next(c["id"] for c in config["components"] if c["props"].get("elem_id") == "facade-canvas")
    log_path = app[1]["log"]
    logged_before = log_path.stat().st_size
    join = {"data": [], "fn_index": 0, "session_hash": "raw1"}
    blob = {"component_id": canvas, "session_hash": "raw1", "fn_name": "accept_blobs", "type": "background",
            "index": "null"}
    as_json = [("/gradio_api/queue/join", {**join, "fn_index": 9999}, 404, "no event with fn_index 9999"),
               ("/gradio_api/queue/join", {**join, "fn_index": "-1"}, 404, "no event with fn_index -1"),
               ("/gradio_api/queue/join", {**join, "fn_index": 10 ** 300}, 404, "no event with fn_index 1000"),
               ("/gradio_api/run/tick", {**join, "fn_index": 9999}, 404, "no event with fn_index 9999"),
               ("/gradio_api/api/train_start/", {**join, "fn_index": 9999}, 404, "no event with fn_index 9999"),
               ("/gradio_api/call/v2/no_such" + "x" * 300, {}, 404, "no API endpoint named 'no_suchxxx"),
               ("/gradio_api/call/v2/train_status", {"bogus" + FORGED: 1}, 422, "no argument named 'bogus\\nERROR"),
               ("/gradio_api/call/v2/facade", {}, 422, "No value provided for required argument: label_map"),
               ("/gradio_api/component_server", {**blob, "component_id": 99999, "data": 1}, 404,
                "no component with id '99999'"),
               ("/gradio_api/component_server", {**blob, "data": FORGED}, 400, "each image as a file in a multipart")]
    for route, body, status, match in as_json:
        data = json.dumps(body).encode()
        got, text = raw_post(app[0], route, {"Content-Type": "application/json", "Content-Length": str(len(data))},
                             data)
        assert got == status and match in json.loads(text)["detail"] and len(text) < 400, (route, got, text)
    as_form = [({"session_hash": "raw1"}, None, 400, "has no 'component_id' field"),
               ({**blob, "component_id": "abc"}, None, 400, "a malformed field: component_id"),
               ({**blob, "component_id": 99999}, None, 404, "no component with id '99999'"),
               ({**blob, "id": "UPPER" + FORGED}, png_bytes(Image.new("RGB", (8, 8))), 400, "a canvas id is 1 to 64"),
               ({**blob, "id": "raw1", "index": "abc"}, png_bytes(Image.new("RGB", (8, 8))), 400,
                "index is a whole number or null, not 'abc'")]
    for fields, file, status, match in as_form:
        got, text = raw_post(app[0], "/gradio_api/component_server", *form(fields, file))
        assert got == status and match in json.loads(text)["detail"] and len(text) < 400, (fields, got, text)
    got, text = raw_post(app[0], "/gradio_api/component_server", *form({**blob, "id": "raw1"}, png_bytes(
        Image.new("RGB", (8, 8)))))
    assert got == 200, (got, text)  # the canvas's own request still goes through
    for route in ("/gradio_api/custom_component/x%0AERROR%20forged/client/t/f",):
        with pytest.raises(urllib.error.HTTPError) as refused_path:
            urllib.request.urlopen(app[0].rstrip("/") + route, timeout=30)
        assert refused_path.value.code == 404
    logged = log_path.read_bytes()[logged_before:].decode(errors="replace")
    assert "Traceback" not in logged and "Exception in ASGI" not in logged and FORGED not in logged, logged[-3000:]
    assert "\nERROR forged" not in logged and logged.count("refused a component_server request") == 7, logged[-3000:]
    assert max(len(line) for line in logged.splitlines()) < 400
    assert_idle(client)


def test_an_event_stream_for_a_session_the_queue_lacks_ends_cleanly(app):
    """Gradio sends "session not found" in the stream, then raised a 404 it could no longer send: the stream
    broke off (an incomplete chunked reply) and the log got an 80-line traceback per request."""
    log_path = app[1]["log"]
    logged_before = log_path.stat().st_size
    for route, match in (("gradio_api/queue/data?session_hash=no_such", '"session_not_found":true'),
                         ("gradio_api/call/train_status/no_such_event", "event: error"),
                         ("gradio_api/call/v2/train_status/no_such_event", "event: error")):
        with urllib.request.urlopen(app[0] + route, timeout=30) as reply:
            text = reply.read().decode()  # an IncompleteRead before
        assert match in text and len(text) < 300, (route, text)
    logged = log_path.read_bytes()[logged_before:].decode(errors="replace")
    assert "Traceback" not in logged and "Exception in ASGI" not in logged, logged[-3000:]


def test_events_run_only_through_the_queue(app):
    """Gradio's direct routes (/gradio_api/run/NAME) skipped the queue and with it every event's concurrency
    limit (one Start at a time, the lanes of the dataset line): closed; the queue's routes serve the clients."""
    body = json.dumps({"data": ["facades", "facades"]}).encode()
    headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
    for path in ("/gradio_api/run/train_start", "/gradio_api/api/train_start/"):
        status, text = raw_post(app[0], path, headers, body)
        assert status == 404 and "join the queue" in text, (path, status, text[:300])
    event, reply = http_call(app[0], "train_status", '{"data": []}')  # the queue's REST route still answers
    assert event == "complete" and '"phase"' in reply, (event, reply[:300])


def test_the_event_check_hooks_a_method_gradio_still_calls():
    """`CheckedBlocks` overrides Gradio's `Blocks.preprocess_data`: an upgrade that renames it, changes its
    arguments or stops calling it from `process_api` would silently bring the tracebacks back."""
    import inspect

    import gradio as gr

    parameters = list(inspect.signature(gr.Blocks.preprocess_data).parameters)
    assert parameters == ["self", "block_fn", "inputs", "state", "explicit_call"], parameters
    assert "self.preprocess_data(" in inspect.getsource(gr.Blocks.process_api)
    # its process_api tells an API client's events apart by these two (messages.for_reader)
    assert {"request", "simple_format"} <= set(inspect.signature(gr.Blocks.process_api).parameters)


# ------------------------------------------------------------------------------ finding 8: start_from app models
def test_start_from_accepts_a_model_trained_in_the_app(client):
    assert start(client, epochs=500).startswith("Started")
    wait_for_status(client, lambda s: s["step"] >= 1)
    client.predict(api_name="/train_stop")
    trained = wait_for_status(client, lambda s: not s["running"])["model"]
    assert trained, "the stopped run exported no model"
    assert start(client, epochs=500, start_from=trained).startswith("Started")
    client.predict(api_name="/train_stop")
    assert wait_for_status(client, lambda s: not s["running"])["phase"] == "stopped"
    refused(client, "cannot start from 'no-such-model'", start_from="no-such-model")


# ------------------------------------------------------------------------------ finding 9: a failed run is shown
def test_a_failed_run_is_reported_to_every_caller(client, app):
    odd_width_dataset(app[1]["data"])
    assert start(client, data_folder=ODD_WIDTHS).startswith("Started")
    ended = wait_for_status(client, lambda s: not s["running"])
    assert ended["phase"] == "failed" and "is not an A|B side-by-side pair" in ended["message"], ended
    assert app_client(app[0]).predict(api_name="/train_status") == ended  # a second viewer


# ------------------------------------------------------------------------------ the pieces, without a server
def test_status_never_fails_whatever_the_numbers():
    from demo.state import MAX_ETA_SECONDS, JobSnapshot

    snapshot = JobSnapshot(version=1, phase="running", step=10 ** 30, epoch=10 ** 300, progress=math.nan,
                           images_per_second=math.inf, eta_seconds=1e300,
                           losses={"G_L1": math.nan, "G_GAN": 0.5}, message="x" * 10 ** 6)
    status = snapshot.as_dict()
    json.dumps(status, allow_nan=False)
    assert status["eta_seconds"] == MAX_ETA_SECONDS and status["progress"] == 0.0
    assert status["losses"] == {"G_GAN": 0.5} and len(status["message"]) <= 300


def test_loading_progress_shows_in_the_status_message(tmp_path):
    from demo.state import JobSnapshot, TrainingJob
    from pix2pix_core.train import LoadingEvent

    job = TrainingJob(tmp_path / "runs", tmp_path / "models", on_model=lambda path: None)
    job._state = JobSnapshot(version=1, phase="loading", run="facades-1")
    job._on_event(LoadingEvent(3, 400))
    assert job.snapshot().message == "facades-1: loading 3/400 images" and job.snapshot().version == 2
    job._state.phase, job._state.message = "stopping", "facades-1: stopping now..."
    job._on_event(LoadingEvent(4, 400))
    assert job.snapshot().message == "facades-1: stopping now..."


def test_status_html_escapes_messages():
    from demo.state import JobSnapshot
    from demo.train_tab import status_html

    text = status_html(JobSnapshot(version=1, phase="failed", message='<img src=x> [Click](http://a) <a href="b">'))
    assert "<img" not in text and "<a " not in text and "&lt;img" in text


def test_the_status_and_plots_leave_out_losses_of_options_that_are_off():
    """G_feat 0.000 was shown in the status line, and in the L1 plot's legend without a colour, on every pix2pix
    run without feature matching."""
    from demo.state import JobSnapshot
    from demo.train_tab import LOSS_COLOURS, plot_frames, status_html

    history = [(step, name, value) for step in (1, 2) for name, value in
               (("G_GAN", 0.7), ("G_L1", 12.0), ("D_real", 0.6), ("D_fake", 0.5 * (step - 1)), ("G_feat", 0.0))]
    snapshot = JobSnapshot(version=1, phase="running", message="", step=2, history=history,
                           losses={"G_GAN": 0.7, "G_L1": 12.0, "G_feat": 0.0})
    assert snapshot.active and "G_feat" not in status_html(snapshot) and "G_L1 12.000" in status_html(snapshot)
    gan, l1 = plot_frames(snapshot)
    assert set(gan["kind"]) == {"G_GAN", "D_real", "D_fake"} and set(l1["kind"]) == {"G_L1"}  # D_fake was 0 once
    assert "G_feat" in LOSS_COLOURS  # with feature matching on, it has a colour of its own


def test_messages_lose_server_paths_and_length(tmp_path):
    from demo.messages import MessageCleaner

    clean = MessageCleaner({tmp_path / "data": "", tmp_path / "runs": "runs"})
    text = clean(f"no images in {tmp_path}/data/a/b and {tmp_path}/runs/r1/latest.safetensors; /etc/x.png " + "y" * 999)
    assert str(tmp_path) not in text and "a/b" in text and "runs/r1/latest.safetensors" in text
    assert "/etc" not in text and "x.png" in text and len(text) <= 300


def test_large_images_wait_in_their_own_lane():
    from demo.image_work import LARGE_PIXELS, LARGE_WAITING, WorkLanes
    from pix2pix_core.errors import Pix2PixError

    lanes = WorkLanes()
    release, holding = threading.Event(), []

    def hold_large():
        with lanes.lane("colorize", LARGE_PIXELS + 1):
            holding.append(1)
            release.wait(10)

    threads = [threading.Thread(target=hold_large) for _ in range(1 + LARGE_WAITING)]
    for thread in threads:
        thread.start()
    deadline = time.time() + 5
    while not holding and time.time() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)  # the others are now waiting for the large lane
    started = time.perf_counter()
    with lanes.lane("colorize", 256 * 256):  # a small request is not held up
        assert time.perf_counter() - started < 0.5
    with pytest.raises(Pix2PixError, match="busy with other large images"):
        with lanes.lane("facade", LARGE_PIXELS + 1):
            pass
    release.set()
    for thread in threads:
        thread.join(10)


def test_small_lanes_have_a_bounded_waiting_line():
    """Each waiting request holds one of the 40 threads all of Gradio's events share: 80 waiting /colorize
    requests made an idle /facade take 22-31 s and /train_status 18 s. Beyond SMALL_WAITING for one endpoint
    (or SMALL_WAITING_ALL for all) a small request is refused at once; other endpoints' free lanes stay free."""
    from demo.image_work import SMALL_LANE, SMALL_WAITING, SMALL_WAITING_ALL, WorkLanes
    from pix2pix_core.errors import Pix2PixError

    assert SMALL_WAITING <= SMALL_WAITING_ALL and 3 * SMALL_LANE + SMALL_WAITING_ALL + 3 <= 33  # of 40 threads
    lanes = WorkLanes()
    release, running, refusals = threading.Event(), [], []

    def hold(endpoint):
        try:
            with lanes.lane(endpoint, 256 * 256):
                running.append(endpoint)
                release.wait(20)
        except Pix2PixError as exc:
            refusals.append(str(exc))

    def start(endpoint, count):
        threads = [threading.Thread(target=hold, args=(endpoint,)) for _ in range(count)]
        for thread in threads:
            thread.start()
        return threads

    def settle(running_count, waiting_count):  # the threads started are in their lane or its waiting line
        deadline = time.time() + 10
        while (len(running), lanes.small_waiting) != (running_count, waiting_count) and time.time() < deadline:
            time.sleep(0.01)

    threads = start("colorize", SMALL_LANE + SMALL_WAITING)
    settle(SMALL_LANE, SMALL_WAITING)
    assert running.count("colorize") == SMALL_LANE and not refusals
    started = time.perf_counter()
    with pytest.raises(Pix2PixError, match="the app is busy with other requests; try again in a moment"):
        with lanes.lane("colorize", 256 * 256):
            pass
    assert time.perf_counter() - started < 0.5  # refused at once, not after a wait
    with lanes.lane("facade", 256 * 256):  # another endpoint's lane is not held up
        assert time.perf_counter() - started < 0.5
    threads += start("facade", SMALL_LANE + SMALL_WAITING_ALL - SMALL_WAITING)  # fills the shared line
    settle(2 * SMALL_LANE, SMALL_WAITING_ALL)
    assert running.count("facade") == SMALL_LANE and not refusals
    with pytest.raises(Pix2PixError, match="the app is busy"):
        with lanes.lane("facade", 256 * 256):
            pass
    with lanes.lane("translate_unpaired", 256 * 256):  # a free lane still runs at once
        pass
    release.set()
    for thread in threads:
        thread.join(20)
    assert not refusals and len(running) == len(threads)
    with lanes.lane("colorize", 256 * 256):  # the places are given back
        pass


def test_runs_folder_cap_removes_oldest_runs_first(tmp_path):
    from demo.disk import folder_bytes, prune_runs

    runs = tmp_path / "runs"
    for age, name in enumerate(["old", "middle", "new"]):
        (runs / name / "checkpoints").mkdir(parents=True)
        (runs / name / "checkpoints" / "latest.safetensors").write_bytes(b"0" * 1000)
        (runs / "models").mkdir(exist_ok=True)
        (runs / "models" / f"{name}.safetensors").write_bytes(b"0" * 300)
        os.utime(runs / name, (1000 + age, 1000 + age))
        os.utime(runs / "models" / f"{name}.safetensors", (1000 + age, 1000 + age))
    removed = prune_runs(runs, 2500, keep={"old"})  # "old" is the run going: never removed
    assert removed == ["middle", "new"] and folder_bytes(runs) <= 2500
    assert (runs / "old").is_dir() and len(list((runs / "models").iterdir())) == 3
    assert prune_runs(runs, 400, keep={"old"}) == ["models/middle.safetensors", "models/new.safetensors"]


def test_pruning_spares_a_fine_tunes_model_and_does_not_count_uploads(tmp_path):
    """A Start pruned the model it was about to fine-tune from, and an unpacked upload (deleted when its run
    ends anyway) pushed older models out."""
    from demo.disk import prune_runs

    runs = tmp_path / "runs"
    (runs / "models").mkdir(parents=True)
    for age, name in enumerate(["base", "other", "latest"]):
        (runs / "models" / f"{name}.safetensors").write_bytes(b"0" * 1000)
        os.utime(runs / "models" / f"{name}.safetensors", (1000 + age, 1000 + age))
    (runs / "uploads" / "upload-1").mkdir(parents=True)
    (runs / "uploads" / "upload-1" / "big.png").write_bytes(b"0" * 5000)
    assert prune_runs(runs, 3000, keep={"latest"}, skip=(runs / "uploads",)) == []  # 3,000 bytes of models
    assert prune_runs(runs, 2000, keep={"latest", "base"}, skip=(runs / "uploads",)) == ["models/other.safetensors"]
    assert (runs / "uploads" / "upload-1" / "big.png").exists()


def test_pruning_removes_the_oldest_dataset_caches_with_the_runs(tmp_path):
    """Data-root datasets' disk caches live in the runs folder's cache/, counted by the cap and removed oldest
    first with the training folders (before any model), never the one a Start is about to read."""
    from demo.disk import prune_runs

    runs = tmp_path / "runs"
    (runs / "models").mkdir(parents=True)
    oldest_first = [runs / "old-run", runs / "cache" / "old", runs / "cache" / "used", runs / "cache" / "new"]
    for age, folder in enumerate(oldest_first):
        folder.mkdir(parents=True)
        (folder / "source.u8").write_bytes(b"0" * 1000)
        os.utime(folder, (1000 + age, 1000 + age))
    (runs / "models" / "m.safetensors").write_bytes(b"0" * 1000)
    assert prune_runs(runs, 3000, keep={"cache/used"}) == ["old-run", "cache/old"]
    assert prune_runs(runs, 1000, keep={"cache/used"}) == ["cache/new", "models/m.safetensors"]
    assert (runs / "cache" / "used" / "source.u8").exists()


def test_a_run_whose_dataset_cache_would_not_fit_is_refused_at_start(tmp_path, monkeypatch):
    """A training set above the dataset budget is decoded into the disk cache (images x sides x 3 x load^2):
    it counts with the checkpoints against the runs cap, and must fit on the disk, at Start rather than
    after minutes of decoding. A cache already there costs nothing more."""
    import demo.train_settings as train_settings
    from demo.train_settings import check_run_size
    from pix2pix_core.config import TrainConfig
    from pix2pix_core.errors import Pix2PixError
    from pix2pix_core.resources import training_cache_folders

    folder = tmp_path / "big" / "train"
    folder.mkdir(parents=True)
    for i in range(2000):  # only the listing is read here
        (folder / f"{i}.jpg").touch()
    config = TrainConfig(task="aligned", data=str(tmp_path / "big"), netG="unet_128", crop_size=128, load_size=143,
                         ngf=8, ndf=8, epochs=1, epochs_decay=0, memory_budget_mb=1,
                         cache_dir=str(tmp_path / "runs" / "cache"))  # cache: 2,000 x 2 x 3 x 143^2 = 0.25 GB
    monkeypatch.setattr(train_settings, "free_bytes", lambda folder: 10 ** 12)
    assert check_run_size(config, 10 ** 10, 10 ** 9) == 2000
    with pytest.raises(Pix2PixError, match=r"dataset cache \(0.25 GB: 2,000 images decoded at 143 px\) and "
                                           r"checkpoints \(0.02 GB\) would take about 0.26 GB of disk, "
                                           r"above the app's 0.20 GB"):
        check_run_size(config, 10 ** 10, 2 * 10 ** 8)
    monkeypatch.setattr(train_settings, "free_bytes", lambda folder: 3 * 10 ** 8)
    with pytest.raises(Pix2PixError, match=r"need about 0.26 GB of disk, and the server has 0.30 GB free "
                                           r"\(it keeps 0.27 GB free\)"):
        check_run_size(config, 10 ** 10, 10 ** 9)
    for path in training_cache_folders(config):  # built by an earlier run: reused
        path.mkdir(parents=True)
    assert check_run_size(config, 10 ** 10, 2 * 10 ** 8) == 2000


def test_gradio_cache_is_cleaned(tmp_path):
    from demo.app import DELETE_CACHE, build_app

    blocks = build_app(tmp_path / "checkpoints", tmp_path / "data", tmp_path / "runs")
    assert blocks.delete_cache == DELETE_CACHE and DELETE_CACHE[1] <= 24 * 3600


def test_the_app_sets_the_dataset_budget_from_its_memory_budget(tmp_path, monkeypatch):
    """A dataset between a quarter of the app's budget and the budget itself trains from the disk cache;
    with TrainConfig's default 1024 MB it was held in memory, and the run refused."""
    import pix2pix_core.resources as resources
    from demo.train_settings import check_run_size, checked_numbers, dataset_budget_mb, with_settings
    from pix2pix_core.config import TrainConfig

    monkeypatch.setattr(resources, "available_memory", lambda: 64 * 10 ** 9)
    assert dataset_budget_mb(10 ** 9) == 238  # a quarter of 1 GB, in MiB
    assert dataset_budget_mb(None) == 1024 and dataset_budget_mb(10 ** 11) == 1024  # at most the default
    monkeypatch.setattr(resources, "available_memory", lambda: 0)  # unknown and no limit: the default
    assert dataset_budget_mb(None) == 1024
    monkeypatch.setattr(resources, "available_memory", lambda: 64 * 10 ** 9)

    folder = tmp_path / "big" / "train"
    folder.mkdir(parents=True)
    for i in range(7000):  # 0.86 GB decoded at load size 143; only the listing is read here
        (folder / f"{i}.jpg").touch()
    base = TrainConfig(task="aligned", data=str(tmp_path / "big"), netG="unet_128", crop_size=128, load_size=143,
                       ngf=8, ndf=8, epochs=1, epochs_decay=0)
    with pytest.raises(Exception, match="above the memory budget of 1.00 GB"):
        check_run_size(base, 10 ** 9)  # the default dataset budget holds it in memory
    config = with_settings(base, checked_numbers(1, 0, 1, 100, 2e-4, 8), "AtoB", 10 ** 9)
    assert config.memory_budget_mb == 238
    assert check_run_size(config, 10 ** 9) == 7000


def test_a_run_whose_checkpoints_would_not_fit_the_runs_cap_is_refused(tmp_path):
    """The Standard preset kept an epoch checkpoint every 10 epochs (0.69 GB each, 13.7 GB in all); the app
    never resumes, so it keeps none, and a run whose checkpoints would not fit the runs cap is refused."""
    from dataclasses import replace

    from demo.train_settings import check_run_size
    from demo.train_tab import task_settings
    from pix2pix_core.config import TrainConfig
    from pix2pix_core.errors import Pix2PixError

    write_aligned(tmp_path / "facades" / "train", 2)
    config = TrainConfig(task="facades", data=str(tmp_path / "facades"), **task_settings("facades", "Standard (paper)"))
    assert config.save_every == 0
    assert check_run_size(config, 10 ** 11, 5_000_000_000) == 2  # latest and its replacement: 1.37 GB
    with pytest.raises(Pix2PixError, match=r"checkpoints would take about 1.37 GB of disk, above the app's 1.00 GB"):
        check_run_size(config, 10 ** 11, 10 ** 9)
    with pytest.raises(Pix2PixError, match=r"about 15.10 GB of disk"):  # 20 epoch checkpoints more
        check_run_size(replace(config, save_every=10), 10 ** 11, 5_000_000_000)


def upload_file(url: str, data: bytes, name: str) -> dict:
    """Upload bytes as the page does; the FileData an event then gets."""
    boundary = f"b{time.monotonic_ns()}"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(f"{url}gradio_api/upload", data=body,
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    path = json.loads(urllib.request.urlopen(request, timeout=30).read())[0]
    return {"path": path, "orig_name": name, "meta": {"_type": "gradio.FileData"}}


def page_event(config: dict, elem_id: str, trigger: str) -> int:
    """The fn_index of the page's `trigger` event on the component with `elem_id`."""
    component = next(c["id"] for c in config["components"] if c.get("props", {}).get("elem_id") == elem_id)
    return next(d.get("id", i) for i, d in enumerate(config["dependencies"])
                if any(list(t)[:2] == [component, trigger] for t in d["targets"]))


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def test_image_inputs_are_checked_before_gradio_decodes_them(app, client):
    """gr.Image decoded uploads itself (a corrupt or 195 MP file failed with an empty "Error"; a data: URL was
    decoded and re-encoded), and the canvas decoded images of any size: each is now a clear, quick refusal."""
    import base64

    config = json.loads(urllib.request.urlopen(f"{app[0]}config", timeout=30).read())
    colorize = page_event(config, "colorize-input", "upload")
    unpaired = page_event(config, "translate-button", "click")
    corrupt = upload_file(app[0], b"\x89PNG\r\n\x1a\n" + b"garbage" * 100, "photo.png")
    for fn_index, data in ((colorize, [corrupt, None, 0]), (unpaired, [corrupt, "", "AtoB"])):
        assert "photo.png: corrupt or truncated image" in queue_call(app[0], fn_index, data)
    bomb = upload_file(app[0], png_bytes(Image.new("L", (15000, 13000))), "wide.png")  # 189 KB, 195 MP
    assert "wide.png: far too many pixels" in queue_call(app[0], colorize, [bomb, None, 0])
    inline = {"url": "data:image/png;base64," + base64.b64encode(png_bytes(Image.new("RGB", (64, 64)))).decode(),
              "path": None, "meta": {"_type": "gradio.FileData"}}
    assert "not as a data: URL" in queue_call(app[0], unpaired, [inline, "", "AtoB"])

    canvas = page_event(config, "facade-canvas", "input")
    big = upload_file(app[0], png_bytes(Image.new("RGB", (1000, 1000), (0, 0, 255))), "bg.png")
    started = time.perf_counter()
    reply = queue_call(app[0], canvas, [{"background": big, "layers": [], "composite": big, "id": None}, None, 0])
    assert "a canvas image is above 0.26 megapixels" in reply and time.perf_counter() - started < 5
    small = upload_file(app[0], png_bytes(Image.new("RGB", (256, 256), (0, 0, 255))), "bg.png")
    reply = queue_call(app[0], canvas, [{"background": small, "layers": [small] * 3, "composite": small, "id": None},
                                        None, 0])
    assert "the canvas sent 3 layers; it has at most 1" in reply
    assert_idle(client)


def test_an_upload_request_above_one_file_is_refused_before_its_body(app):
    """Gradio limits each file, not a request (it takes many files at once, kept an hour): the app's guard
    answers a 200 MB upload from its headers alone, without reading the body."""
    import http.client
    from urllib.parse import urlparse

    where = urlparse(app[0])
    connection = http.client.HTTPConnection(where.hostname, where.port, timeout=10)
    connection.putrequest("POST", "/gradio_api/upload")
    connection.putheader("Content-Type", "multipart/form-data; boundary=x")
    connection.putheader("Content-Length", str(200 * 2 ** 20))
    connection.endheaders()  # no body follows: the answer must not wait for one
    reply = connection.getresponse()
    assert reply.status == 413 and "at most 51 MB" in json.loads(reply.read())["detail"]


def raw_post(url: str, route: str, headers: dict, body: bytes = b"") -> tuple[int, str]:
    """POST with exactly these headers and body bytes (http.client adds no framing of its own)."""
    import http.client
    from urllib.parse import urlparse

    where = urlparse(url)
    connection = http.client.HTTPConnection(where.hostname, where.port, timeout=10)
    connection.putrequest("POST", route, skip_accept_encoding=True)
    for name, value in headers.items():
        connection.putheader(name, value)
    connection.endheaders()
    try:
        connection.send(body)
    except OSError:  # answered and closed before the whole body went: the answer is still there to read
        pass
    reply = connection.getresponse()
    status, text = reply.status, reply.read().decode()
    connection.close()
    return status, text


def chunked(body: bytes, size: int = 16 * 1024) -> bytes:
    parts = [body[i:i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in parts) + b"0\r\n\r\n"


def test_a_body_without_an_honest_length_is_held_to_the_caps_too(app, client):
    """With Content-Length and Transfer-Encoding both sent, h11 read the chunks and ignored the small length:
    every cap (64 kB inputs, 51 MB uploads, the free-disk check) was passed. A chunked body over its cap got
    FastAPI's 400 "error parsing the body" (an exception from receive); now a 413 from the guard."""
    inputs = json.dumps({"data": ["x" * 100_000], "fn_index": 0, "session_hash": "s1"}).encode()
    route = "/gradio_api/queue/join"
    status, text = raw_post(app[0], route, {"Content-Type": "application/json", "Content-Length": "100",
                                            "Transfer-Encoding": "chunked"}, chunked(inputs))
    assert status == 400 and "not both" in text, (status, text)
    status, text = raw_post(app[0], route, {"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
                            chunked(inputs))
    assert status == 413 and "at most 64 kB" in text, (status, text)
    status, text = raw_post(app[0], "/gradio_api/upload", {"Content-Type": "multipart/form-data; boundary=x",
                                                           "Transfer-Encoding": "chunked"}, chunked(b"x" * 1000))
    assert status == 411, (status, text)
    assert_idle(client)


def test_the_upload_guard_keeps_the_disk_from_filling(tmp_path):
    import asyncio

    from demo.upload_guard import UploadGuard

    passed = []

    async def gradio(scope, receive, send):
        passed.append(scope["path"])

    def answer(guard, path="/gradio_api/upload", length=b"1000", method="POST") -> int | None:
        sent = []

        async def send(message):
            sent.append(message)

        headers = [(b"content-length", length)] if length is not None else []
        scope = {"type": "http", "method": method, "path": path, "headers": headers}
        asyncio.run(guard(scope, None, send))
        return sent[0]["status"] if sent else None

    roomy = UploadGuard(gradio, tmp_path, free_bytes=lambda folder: 10 * 2 ** 30)
    nearly_full = UploadGuard(gradio, tmp_path, free_bytes=lambda folder: 2 ** 31 + 500)
    assert answer(roomy) is None and answer(roomy, "/gradio_api/queue/join") is None
    assert answer(nearly_full) == 507 and answer(nearly_full, method="GET") is None
    assert answer(roomy, length=None) == 411 and answer(roomy, length=b"-5") == 411
    assert answer(roomy, length=str(52 * 2 ** 20).encode()) == 413
    canvas = "/gradio_api/component_server"  # the canvas's images, held in memory: a smaller cap
    assert answer(roomy, canvas, length=str(9 * 2 ** 20).encode()) == 413 and answer(roomy, canvas) is None
    assert passed == ["/gradio_api/upload", "/gradio_api/queue/join", "/gradio_api/upload",
                      "/gradio_api/component_server"]
    # Gradio serves /component_server/ too: the trailing slash skipped the canvas cap (20 x 40 MB: 2 GB held)
    assert answer(roomy, canvas + "/", length=str(9 * 2 ** 20).encode()) == 413
    assert answer(roomy, "/gradio_api//upload/", length=str(52 * 2 ** 20).encode()) == 413
    # every other POST carries an event's inputs as JSON, kept per session by Gradio before any handler: 64 kB
    assert answer(roomy, "/gradio_api/queue/join", length=str(2 * 2 ** 20).encode()) == 413
    assert answer(roomy, "/gradio_api/run/colorize/", length=str(2 * 2 ** 20).encode()) == 413
    assert answer(nearly_full, "/gradio_api/queue/join") is None  # the disk check is for files
    assert len(passed) == 5


def test_a_json_body_without_a_length_is_counted_as_it_arrives():
    """A chunked body says no size: the guard counts it and answers 413 at the cap, before the app replies."""
    import asyncio

    from demo.upload_guard import MAX_BODY_BYTES, UploadGuard

    async def gradio(scope, receive, send):  # reads its whole body, then answers, as a route handler does
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    def statuses(chunks: int) -> list:
        sent, parts = [], iter([b"x" * 2 ** 12] * chunks)

        async def receive():
            body = next(parts, b"")
            return {"type": "http.request", "body": body, "more_body": bool(body)}

        async def send(message):
            sent.append(message.get("status"))

        scope = {"type": "http", "method": "POST", "path": "/gradio_api/queue/join", "headers": []}
        asyncio.run(UploadGuard(gradio, ".")(scope, receive, send))
        return [status for status in sent if status]

    assert statuses(4) == [200]
    assert statuses(MAX_BODY_BYTES // 2 ** 12 + 1) == [413]


def test_a_refused_canvas_drops_the_blobs_it_was_sent():
    """The canvas sends its images as blobs first, kept in memory until used: a refused payload's stayed."""
    import gradio as gr
    from gradio.components.image_editor import EditorData, EditorDataBlobs

    from demo.uploads import CanvasEditor

    editor = CanvasEditor(canvas_size=(256, 256), fixed_canvas=True, type="numpy", image_mode="RGB")
    big = png_bytes(Image.new("RGB", (1000, 1000)))
    editor.blob_storage["abc"] = EditorDataBlobs(background=big, layers=[], composite=big)
    with pytest.raises(gr.Error, match="above 0.26 megapixels"):
        editor.preprocess(EditorData(id="abc"))
    assert "abc" not in editor.blob_storage


@pytest.mark.parametrize("kind, index, refusal", [
    ("<img src=x onerror=alert(1)>" * 1000, None,  # the value was cut to 20 characters with no sign of the cut
     "a canvas sends its background, composite or layer, not '<img src=x onerror=…'"),
    ("layer", "²", "the canvas has at most 1 layer(s); layer '²' was sent"),  # str.isdigit(): ValueError in int()
    ("layer", "9" * 5000, f"the canvas has at most 1 layer(s); layer '{'9' * 19}…' was sent"),  # int()'s limit
    ("background", "abc", "a canvas image's index is a whole number or null, not 'abc'"),  # int() in Gradio's code
    ("composite", "١", "a canvas image's index is a whole number or null, not '١'"),
])
def test_a_canvas_form_field_is_refused_in_one_line_quoting_it_cut(kind, index, refusal):
    """The canvas's own route (component_server: a client's form fields, not the page's) quoted a field as
    repr(field[:20]), the cut unmarked; an index int() could not read ('²' passed str.isdigit(), 5000 digits,
    'abc' for a background, which Gradio's code reads too) was a ValueError: a 500 and a traceback in the log."""
    from types import SimpleNamespace

    import gradio as gr

    from demo.uploads import CanvasEditor

    editor = CanvasEditor(canvas_size=(256, 256), fixed_canvas=True, type="numpy", image_mode="RGB")
    with pytest.raises(gr.Error) as refused:
        editor.accept_blobs(SimpleNamespace(data={"type": kind, "index": index, "file": b"", "id": "abc"},
                                            files=[("files", png_bytes(Image.new("RGB", (8, 8))))]))
    assert refused.value.message == refusal and editor.blob_storage == {}
    for kind, index in (("background", "null"), ("background", ""), ("composite", None), ("layer", "0")):
        editor.accept_blobs(SimpleNamespace(data={"type": kind, "index": index, "file": b"", "id": "abc"},
                                            files=[("files", b"x")]))  # what the page sends still goes through
    assert editor.blob_storage["abc"].layers == [b"x"]


def test_canvas_blobs_waiting_for_their_event_are_bounded():
    """Gradio keeps the canvas's images in memory until an event uses them, and grew its layer list to any
    index a request named: both are bounded now."""
    import gradio as gr
    from gradio.components.image_editor import AcceptBlobs

    from demo.uploads import CanvasEditor

    editor = CanvasEditor(canvas_size=(256, 256), fixed_canvas=True, type="numpy", image_mode="RGB")
    editor.MAX_WAITING_BYTES = 3 * 2 ** 20

    def send(canvas_id, kind="background", index=None, size=2 ** 20):
        editor.accept_blobs(AcceptBlobs(data={"type": kind, "index": index, "file": b"", "id": canvas_id},
                                        files=[(kind, b"x" * size)]))

    with pytest.raises(gr.Error, match="at most 1 layer"):
        send("huge", "layer", "1000000000")
    with pytest.raises(gr.Error, match="at most 1 layer"):
        send("negative", "layer", "-3")
    assert editor.blob_storage == {}
    send("a")
    send("a", "composite")
    send("b")
    assert list(editor.blob_storage) == ["a", "b"]
    send("c")  # 4 MB waiting: the oldest canvas goes, the newest stays whole
    assert list(editor.blob_storage) == ["b", "c"] and editor.blob_storage["c"].background == b"x" * 2 ** 20
    send("d", size=5 * 2 ** 20)  # one canvas above the bound on its own keeps its images (the guard caps it)
    assert list(editor.blob_storage) == ["d"]
    # ids were kept as sent (a 2 MB id per request, 1 byte of image), and requests storing nothing as entries
    with pytest.raises(gr.Error, match="canvas id"):
        send("x" * (2 * 2 ** 20), size=1)
    with pytest.raises(gr.Error, match="canvas id"):
        send("../Etc", size=1)
    with pytest.raises(gr.Error, match="not 'mask'"):
        send("e", "mask", size=1)
    with pytest.raises(gr.Error, match="at most 1 layer"):
        send("e", "layer", None, size=1)
    assert list(editor.blob_storage) == ["d"]
    editor.MAX_WAITING_CANVASES = 3
    for canvas_id in ("f", "g", "h", "i"):
        send(canvas_id, size=1)
    assert list(editor.blob_storage) == ["g", "h", "i"]
    # a dropped canvas's event was handed an empty canvas (the facade tab drew a plain facade, saying nothing)
    from gradio.components.image_editor import EditorData

    with pytest.raises(gr.Error, match="too busy to keep this drawing"):
        editor.preprocess(EditorData(id="f"))
    assert editor.preprocess(EditorData(id="f"))["background"] is None  # said once; an unknown id as before
    # dropped between its background and its other images: the rest is refused, and its event says so (it
    # found the later images alone and drew without the strokes)
    send("j", size=1)  # "g" is dropped now, as if between its requests
    with pytest.raises(gr.Error, match="too busy to keep this drawing"):
        send("g", "composite", size=1)
    assert "g" not in editor.blob_storage
    with pytest.raises(gr.Error, match="too busy to keep this drawing"):
        editor.preprocess(EditorData(id="g"))


def test_a_model_file_replaced_while_the_app_runs_is_loaded_again(tmp_path):
    """The segmenter behind 'Start from a photo' was cached by its path: a new file there went unused until
    a restart."""
    import os

    from demo.facades_tab import load_cached

    path, cache, loads = tmp_path / "facades_segmenter.safetensors", {}, []
    path.write_bytes(b"first")

    def load(p):
        loads.append(p.read_bytes())
        return len(loads)

    assert load_cached(cache, path, load) == 1 and load_cached(cache, path, load) == 1  # loaded once
    replacement = tmp_path / "new"
    replacement.write_bytes(b"second file")
    os.replace(replacement, path)
    assert load_cached(cache, path, load) == 2 and loads == [b"first", b"second file"] and len(cache) == 1


def test_unpaired_collections_given_to_a_paired_task_are_named(tmp_path):
    """A folder with trainA/ and trainB/ under the Facades task said "0 training images" and "the dataset holds
    no training images", nothing about the layout or the Unpaired task."""
    from conftest import write_collection
    from pix2pix_core.config import TrainConfig
    from pix2pix_core.errors import Pix2PixError

    from demo.train_settings import check_run_size

    for side in ("trainA", "trainB"):
        write_collection(tmp_path / "unp" / side, 2, (90, 90, 90), seed=1)
    with pytest.raises(Pix2PixError, match=r"no training images \(it holds trainA/ and trainB/: .*CycleGAN"):
        check_run_size(TrainConfig(task="facades", data=str(tmp_path / "unp")))


def test_a_client_that_leaves_during_its_upload_is_no_traceback(caplog):
    """Gradio's upload route raises ClientDisconnect when the body ends in a disconnect (a page closed mid-upload,
    or the guard cutting a body off at its cap): uvicorn logged each as an 80-line "Exception in ASGI
    application" traceback (4 in one browser-test run), which any client could repeat at will."""
    import asyncio
    import logging

    from starlette.requests import ClientDisconnect, Request

    from demo.upload_guard import MAX_BODY_BYTES, UploadGuard

    async def gradio(scope, receive, send):  # parses its body as Gradio's multipart parser does
        async for _ in Request(scope, receive).stream():
            pass
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    def statuses(path: str, headers: list, chunks: list[bytes], then_leave: bool) -> list:
        sent, parts = [], iter(chunks)

        async def receive():
            body = next(parts, None)
            if body is None:
                return {"type": "http.disconnect"} if then_leave else {"type": "http.request", "body": b""}
            return {"type": "http.request", "body": body, "more_body": True}

        async def send(message):
            sent.append(message.get("status"))

        scope = {"type": "http", "method": "POST", "path": path, "headers": headers}
        asyncio.run(UploadGuard(gradio, ".", free_bytes=lambda folder: 2 ** 40)(scope, receive, send))
        return [status for status in sent if status]

    with caplog.at_level(logging.INFO, logger="pix2pix_studio"):
        assert statuses("/gradio_api/component_server", [(b"content-length", b"5000")], [b"x" * 1000] * 3,
                        then_leave=True) == []  # left: nothing to answer, nothing raised
        assert statuses("/gradio_api/queue/join", [(b"transfer-encoding", b"chunked")],
                        [b"x" * 2 ** 12] * (MAX_BODY_BYTES // 2 ** 12 + 1), then_leave=False) == [413]
    assert [r.getMessage() for r in caplog.records] == ["a client left during its request to "
                                                        "/gradio_api/component_server"]
    with pytest.raises(ClientDisconnect):  # what reached uvicorn before
        asyncio.run(gradio({"type": "http", "method": "POST", "path": "/", "headers": []},
                           lambda: asyncio.sleep(0, {"type": "http.disconnect"}), None))


def test_a_route_named_in_the_log_cannot_forge_lines(caplog):
    """The server decodes %0A in a path to a newline: a client that leaves during a request to
    `/x%0AERROR ...` wrote a log line of its own choosing under the app's one."""
    import asyncio
    import logging

    from starlette.requests import ClientDisconnect

    from demo.upload_guard import UploadGuard

    async def leaves(scope, receive, send):
        raise ClientDisconnect()

    async def receive():
        return {"type": "http.disconnect"}

    async def send(message):
        pass

    scope = {"type": "http", "method": "POST", "path": "/gradio_api/upload\nERROR forged\r\x1b[2K", "headers": []}
    guard = UploadGuard(leaves, ".", free_bytes=lambda folder: 2 ** 40)
    with caplog.at_level(logging.INFO, logger="pix2pix_studio"):
        asyncio.run(guard._counted(scope, receive, send, 1000, False))
    (message,) = [r.getMessage() for r in caplog.records]
    assert message == "a client left during its request to /gradio_api/upload\\nERROR forged\\r\\x1b[2K"


def test_a_client_that_leaves_during_its_upload_leaves_no_file(tmp_path, caplog):
    """Gradio's multipart parser writes a body's files to temp files as they arrive and kept them when the client
    left mid-body: an upload cut off after 40 MB left 40 MB in Gradio's cache for good (5 in 4 s: 200 MB, never
    deleted), a canvas image its 7 MB in the system temp folder, so one client could fill the disk."""
    import asyncio
    import logging

    from gradio.route_utils import GradioMultiPartParser
    from starlette.requests import Request

    from demo.upload_guard import UploadGuard

    async def gradio(scope, receive, send):  # Gradio's upload route: the parser, writing into its cache folder
        request = Request(scope, receive)
        await GradioMultiPartParser(request.headers, request.stream(), upload_dir=tmp_path / "cache",
                                    max_file_size=2 ** 30).parse()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    head = (b'--b\r\nContent-Disposition: form-data; name="files"; filename="a.png"\r\n'
            b"Content-Type: image/png\r\n\r\n")
    chunks = iter([head, b"x" * 2 ** 20, b"x" * 2 ** 20])

    async def receive():
        body = next(chunks, None)
        return {"type": "http.disconnect"} if body is None else {"type": "http.request", "body": body,
                                                                 "more_body": True}

    async def send(message):
        pass

    (tmp_path / "cache").mkdir()
    scope = {"type": "http", "method": "POST", "path": "/gradio_api/upload",
             "headers": [(b"content-type", b"multipart/form-data; boundary=b"), (b"content-length", b"5000000")]}
    guard = UploadGuard(gradio, tmp_path / "cache", free_bytes=lambda folder: 2 ** 40)
    with caplog.at_level(logging.INFO, logger="pix2pix_studio"):
        asyncio.run(guard(scope, receive, send))
    assert [r.getMessage() for r in caplog.records] == ["a client left during its request to /gradio_api/upload"]
    assert list((tmp_path / "cache").iterdir()) == []


def test_file_inputs_leave_no_empty_file_in_gradios_cache(tmp_path):
    """gr.File and gr.UploadButton with type "filepath" create an empty temp file in Gradio's cache for each file
    of each event and drop it (its delete_cache never sees it): 755 /colorize calls in 20 s, refused ones included,
    left 755 files there for good, an inode and a cache-folder entry each."""
    import gradio as gr
    from gradio.data_classes import FileData

    from demo.app import build_app

    (tmp_path / "checkpoints").mkdir()
    blocks = build_app(tmp_path / "checkpoints", tmp_path / "data", tmp_path / "runs", device="cpu")
    uploaded = tmp_path / "uploaded.zip"
    uploaded.write_bytes(b"PK")
    cache = tmp_path / "cache"
    cache.mkdir()
    inputs = {id(c): c for fn in blocks.fns.values() for c in fn.inputs
              if isinstance(c, (gr.File, gr.UploadButton)) and c.type == "filepath"}
    assert len(inputs) >= 5, inputs  # /facade's and /colorize's, the dataset zip, the two Facades upload buttons
    for component in inputs.values():
        component.GRADIO_CACHE = str(cache)
        if component.file_types and "image" in component.file_types:
            image = save(Image.new("RGB", (8, 8)), tmp_path / "uploaded.png")
            assert component.preprocess(FileData(path=str(image))) == str(image)
        elif not component.file_types or ".zip" in component.file_types:
            assert component.preprocess(FileData(path=str(uploaded))) == str(uploaded)
    assert list(cache.iterdir()) == []


def test_gradios_cache_deletion_leaves_no_folder_or_path_behind(tmp_path, colorize_checkpoint):
    """Gradio keeps each upload and result as <cache>/<content hash>/<name>, and its delete_cache (files older than
    an hour, every 10 minutes) deleted the files but never their folders: every request left one or two empty
    folders for good (an upload's, a result's), an inode and a 4 kB block each on ext4. And an upload is listed twice
    (the upload route's list and its input's): deleted through one, it stayed in the other for good, in memory and
    looked at again at every pass."""
    from gradio import route_utils

    from app_helpers import served_in_process
    from demo.app import build_app
    from pix2pix_core.checkpoint import export_generator

    (tmp_path / "checkpoints").mkdir()
    export_generator(colorize_checkpoint, tmp_path / "checkpoints" / "colorize_tiny.safetensors")
    blocks = build_app(tmp_path / "checkpoints", tmp_path / "data", tmp_path / "runs", device="cpu")
    with served_in_process(blocks) as port:
        client = app_client(f"http://127.0.0.1:{port}/")
        for seed in range(3):
            photo = save(Image.new("RGB", (32, 24), (seed * 80, 90, 40)), tmp_path / f"photo{seed}.png")
            client.predict(handle_file(str(photo)), "", seed, api_name="/colorize")
        tracked = set().union(*blocks.temp_file_sets)
        served = {path for path in tracked if Path(path).name.startswith(("photo", "colorized"))}
        assert len(served) == 6, served  # three uploads and three results
        route_utils.delete_files_created_by_app(blocks, None)  # what Gradio runs on its schedule (None: any age)
        assert not any(Path(path).exists() for path in served)
        assert [Path(path).parent.name for path in served if Path(path).parent.exists()] == []
        assert served.isdisjoint(set().union(*blocks.temp_file_sets))


def test_upload_progress_ids_are_bounded_in_length_and_number(app, tmp_path):
    """Gradio tracks each upload's progress by the `upload_id` a client names, and forgets it only when a progress
    stream for it ends: 2,000 uploads naming 8 kB ids (and never asking for their progress) held 20 MB for good,
    and every id ever named stayed as an asyncio.Event. Ids are now at most 64 characters (the page's are 13), and
    at most MAX_TRACKED_UPLOADS are remembered, the oldest forgotten first."""
    from gradio.routes import file_upload_statuses

    from demo.upload_guard import MAX_TRACKED_UPLOADS, UploadGuard

    for route in ("/gradio_api/upload", "/gradio_api/upload_progress"):
        request = urllib.request.Request(f"{app[0].rstrip('/')}{route}?upload_id={'x' * 8000}",
                                         method="POST" if route.endswith("upload") else "GET",
                                         headers={"Content-Type": "multipart/form-data; boundary=x",
                                                  "Content-Length": "0"})
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(request, timeout=10)
        assert error.value.code == 400 and "at most 64 characters" in error.value.read().decode(), route

    async def gradio(scope, receive, send):
        pass

    UploadGuard(gradio, tmp_path)
    for index in range(MAX_TRACKED_UPLOADS + 500):  # uploads that name an id; nobody follows their progress
        file_upload_statuses.append(f"upload{index}", "a.png", b"x")
        file_upload_statuses.set_done(f"upload{index}")
    assert len(file_upload_statuses._statuses) <= MAX_TRACKED_UPLOADS
    assert len(file_upload_statuses._signals) <= MAX_TRACKED_UPLOADS
    assert file_upload_statuses.is_done(f"upload{MAX_TRACKED_UPLOADS + 499}")  # the latest are still tracked


def test_the_sessions_gradio_keeps_are_bounded(tmp_path):
    """Gradio keeps a copy of every component's config per session (240 kB for this page, 116 components), for
    10,000 sessions by default: a client sending events under new session hashes made the app hold 0.5 GB per
    2,000 sessions, 2.4 GB in all. The app keeps MAX_SESSIONS (the least recently used go first: an open page's
    timer uses its own every second)."""
    from app_helpers import served_in_process
    from demo.app import build_app

    (tmp_path / "checkpoints").mkdir()
    blocks = build_app(tmp_path / "checkpoints", tmp_path / "data", tmp_path / "runs", device="cpu")
    with served_in_process(blocks):
        assert blocks.state_holder.capacity <= 1000


def test_events_waiting_in_the_queue_are_bounded(tmp_path):
    """Gradio's queue took any number of events: 3,000 joins of /train_start with 60 kB inputs, waiting behind one
    another (one Start at a time), held 1 GB, and every Start of every user waited behind them. Beyond MAX_QUEUED
    waiting events a join is now refused at once (503, "Queue is full")."""
    import httpx

    from app_helpers import served_in_process
    from demo.app import MAX_QUEUED, build_app
    from pix2pix_core.errors import Pix2PixError

    (tmp_path / "checkpoints").mkdir()
    blocks = build_app(tmp_path / "checkpoints", tmp_path / "data", tmp_path / "runs", device="cpu")
    release = threading.Event()

    def held():  # the first Start holds the one Start lane until the test lets it go
        release.wait(60)
        raise Pix2PixError("held")

    blocks.app_state.job.refuse_if_active = held
    with served_in_process(blocks) as port:
        try:
            fn_index = next(fn._id for fn in blocks.fns.values() if fn.api_name == "train_start")
            inputs = ["facades", "", "BtoA", "Quick demo", 1, 0, 1, 100, 2e-4, 16, "from scratch", None, False]
            with httpx.Client(timeout=30) as http:
                codes = [http.post(f"http://127.0.0.1:{port}/gradio_api/queue/join",
                                   json={"data": inputs, "fn_index": fn_index, "session_hash": f"s{index}"})
                         .status_code for index in range(MAX_QUEUED + 5)]
            assert codes[:MAX_QUEUED] == [200] * MAX_QUEUED and codes.count(503) >= 4, codes
        finally:
            release.set()  # before the server closes: the held Start lets go


def test_a_session_that_never_reads_its_results_is_held_to_a_few_events(app):
    """Gradio keeps an event's messages until its session's stream reads them: one session joining /train_status
    10,000 times and never reading grew the server by 90 MB, without end. A session (by queue/join, or a session
    hash sent to call/NAME) with MAX_UNREAD events not read yet is refused more (429); others are not."""
    import httpx

    from demo.route_checks import MAX_UNREAD

    base = f"{app[0].rstrip('/')}/gradio_api"
    with httpx.Client(timeout=30) as http:
        config = http.get(f"{app[0].rstrip('/')}/config").json()
        fn_index = next(d["id"] for d in config["dependencies"] if d.get("api_name") == "train_status")

        def join(session: str) -> int:
            body = {"data": [], "fn_index": fn_index, "session_hash": session}
            return http.post(f"{base}/queue/join", json=body).status_code

        codes = [join("never-reads") for _ in range(MAX_UNREAD + 3)]
        assert codes == [200] * MAX_UNREAD + [429] * 3, codes
        refused = http.post(f"{base}/call/train_status", json={"data": [], "session_hash": "never-reads"})
        assert refused.status_code == 429 and "not read" in refused.json()["detail"], refused.text
        assert join("another") == 200
        with http.stream("GET", f"{base}/queue/data", params={"session_hash": "never-reads"}) as stream:
            completed = sum("process_completed" in line for line in stream.iter_lines())
        assert completed == MAX_UNREAD
        assert join("never-reads") == 200  # read: it may send again


def test_gradios_cache_deletion_survives_a_file_cached_while_it_runs(tmp_path, monkeypatch):
    """Gradio's deletion walks each set of cached files as it deletes them, in a worker thread, while requests add
    files to the same sets: an upload or a result cached meanwhile raised "Set changed size during iteration",
    which ended Gradio's schedule for good (its loop has no try), so nothing was ever deleted again. The sets it
    walks are copies now; the file cached meanwhile stays listed, the old ones go."""
    import types

    from gradio import route_utils

    from demo.gradio_cache import tidy_deletion

    tidy_deletion()
    cached = set()
    for name in ("a", "b", "c"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "old.png").write_bytes(b"x")
        cached.add(str(tmp_path / name / "old.png"))
    blocks = types.SimpleNamespace(blocks={}, temp_file_sets=[cached])
    arrived = str(tmp_path / "new.png")
    remove = os.remove

    def remove_while_a_request_caches(path):  # what another thread does between two of Gradio's deletions
        remove(path)
        cached.add(arrived)

    monkeypatch.setattr(os, "remove", remove_while_a_request_caches)
    route_utils.delete_files_created_by_app(blocks, None)
    assert cached == {arrived} and blocks.temp_file_sets == [cached]
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # the old files and their folders are gone


def test_unread_results_of_all_sessions_together_are_bounded(tmp_path, monkeypatch):
    """The 429 above holds one session; a client using a new session hash per call (or none, with call/NAME) was
    never refused: Gradio kept the messages of its latest 2,000 sessions (~300 MB at 64 results of ~2.4 kB each) and
    the ids of every session's unread events for good (~300 B per call). All sessions together now hold at most
    MAX_UNREAD_HELD unread events, the least recently used sessions' dropped first, and no id list of a session
    whose messages Gradio forgot; the latest results are still there to read."""
    import httpx

    from app_helpers import served_in_process
    from demo import unread_results
    from demo.app import build_app

    monkeypatch.setattr(unread_results, "MAX_UNREAD_HELD", 20)
    (tmp_path / "checkpoints").mkdir()
    blocks = build_app(tmp_path / "checkpoints", tmp_path / "data", tmp_path / "runs", device="cpu")
    with served_in_process(blocks) as port, httpx.Client(timeout=30) as http:
        base, queue = f"http://127.0.0.1:{port}/gradio_api", blocks._queue

        def call(count: int, session=lambda index: {}) -> None:
            for index in range(count):
                reply = http.post(f"{base}/call/train_status", json={"data": [], **session(index)})
                assert reply.status_code == 200, reply.text
            while queue.event_ids_to_events:  # every event done: only the unread results are left
                time.sleep(0.05)

        def held() -> int:
            return sum(map(len, queue.pending_event_ids_session.values()))

        call(30, lambda index: {"session_hash": f"fresh{index}"})
        call(20)  # no session hash: each call is a session of its own
        assert held() <= 20 and len(queue.pending_messages_per_session) <= 20 + 1, held()
        assert not any(session.startswith("fresh") for session in queue.pending_event_ids_session)  # oldest first
        call(1, lambda index: {"session_hash": "latest"})
        with http.stream("GET", f"{base}/queue/data", params={"session_hash": "latest"}) as stream:
            assert sum("process_completed" in line for line in stream.iter_lines()) == 1

        queue.pending_messages_per_session.max_size = 5  # Gradio's own bound (2,000 sessions), to see it at work
        call(15, lambda index: {"session_hash": f"forgotten{index}"})
        # the sessions Gradio forgot lose their id lists at the next join (the latest join made Gradio forget one)
        assert len(set(queue.pending_event_ids_session) - set(queue.pending_messages_per_session)) <= 1


def test_empty_folders_left_in_gradios_cache_are_removed_at_start(tmp_path, monkeypatch):
    """App versions before Gradio's deletion was tidied left one or two empty folders per request in Gradio's
    cache, for good (a new app does not know them). The app removes them at start: only the empty folders Gradio
    names for a cached file (its content's sha256), none changed in the last hour (a request's, about to get its
    file), none through a link; no other empty folder at any depth: Gradio's cache folder may be a shared one
    (GRADIO_TEMP_DIR=/tmp), and every old empty folder below it went. Done before build_app returns (before the
    server takes a request): in the background, it could remove a folder a request was writing its file into."""
    from demo import app
    from demo.app import build_app

    remove = app.remove_empty_folders
    monkeypatch.setattr(app, "remove_empty_folders", lambda *args, **kwargs: time.sleep(0.5) or remove(*args,
                                                                                                       **kwargs))

    cache, outside = tmp_path / "gradio", tmp_path / "outside"
    left, kept, fresh, linked = ("%064x" % n for n in range(4))
    for folder in (left, kept, fresh, "someone_elses", f"someone_elses/{left}", f"{kept}/{left}"):
        (cache / folder).mkdir(parents=True, exist_ok=True)
    (cache / kept / "photo.png").write_bytes(b"x")
    (outside / left).mkdir(parents=True)
    (cache / linked).symlink_to(outside / left)
    old = time.time() - 2 * 3600
    for folder in (cache / left, cache / kept, cache / "someone_elses", cache / "someone_elses" / left,
                   cache / kept / left, outside / left):
        os.utime(folder, (old, old))
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(cache))
    (tmp_path / "checkpoints").mkdir()
    build_app(tmp_path / "checkpoints", tmp_path / "data", tmp_path / "runs", device="cpu")
    names = {path.name for path in cache.iterdir()}  # with the files the page itself cached at build
    assert {kept, fresh, linked, "someone_elses"} <= names and left not in names, names
    assert (cache / kept / "photo.png").exists() and (outside / left).is_dir()
    assert (cache / "someone_elses" / left).is_dir() and (cache / kept / left).is_dir()


def test_open_pages_timer_ticks_take_no_place_in_the_queue(tmp_path):
    """Every open page's Train-tab timer sends a tick a second. Gradio's queue counts every event waiting for a
    worker slot against its size (MAX_QUEUED, all events together), ticks too: with all 40 slots busy, 200 open
    pages' ticks filled it and a user's click was refused as "Queue is full". The page's ticks skip the queue now
    (cheap, read-only: they wait for a thread only), as the page sends them: by their dependency's `queue`."""
    import asyncio

    import httpx

    from app_helpers import served_in_process
    from demo.app import MAX_QUEUED, build_app

    (tmp_path / "checkpoints").mkdir()
    blocks = build_app(tmp_path / "checkpoints", tmp_path / "data", tmp_path / "runs", device="cpu")
    release = threading.Event()

    async def held():  # holds a worker slot, not a thread
        while not release.is_set():
            await asyncio.sleep(0.05)
        return {}

    by_name = {fn.api_name: fn for fn in blocks.fns.values()}
    by_name["train_status"].fn = held
    with served_in_process(blocks) as port, httpx.Client(timeout=30) as http:
        base, queue = f"http://127.0.0.1:{port}/gradio_api", blocks._queue
        try:
            config = http.get(f"http://127.0.0.1:{port}/config").json()
            tick = next(d for d in config["dependencies"] if d["targets"] and d["targets"][0][1] == "tick")

            def join(name: str, data: list, session: str) -> httpx.Response:
                body = {"data": data, "fn_index": by_name[name]._id, "session_hash": session}
                return http.post(f"{base}/queue/join", json=body)

            assert all(join("train_status", [], "busy").status_code == 200 for _ in queue.active_jobs)
            deadline = time.time() + 30
            while queue.get_active_worker_count() < len(queue.active_jobs) and time.time() < deadline:
                time.sleep(0.05)
            assert queue.get_active_worker_count() == len(queue.active_jobs), "the worker slots were not filled"
            for page in range(MAX_QUEUED):  # each page's tick, the way the page sends it
                session = f"page{page}"
                body = {"data": [-1, ""], "fn_index": tick["id"], "session_hash": session}
                reply = http.post(f"{base}/queue/join" if tick["queue"] else f"{base}/run/tick", json=body)
                assert reply.status_code == 200, reply.text
            stop = join("train_stop", [], "user")
            assert stop.status_code == 200, stop.text  # was 503: "Queue is full. Max size is 200 and size is 200"
            assert len(queue) <= 1
        finally:
            release.set()
