"""The app in a real browser: Playwright (Python) driving Debian's chromium against a live app.py.

Needs `apt-get install -y chromium` (never `playwright install`); skipped when /usr/bin/chromium is missing.
Screenshots go to test-artifacts/ (gitignored) for a human to look at.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import write_collection
from pix2pix_core.palette import facade_classes
from app_helpers import ODD_WIDTHS, app_client, odd_width_dataset, running_app

playwright_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
TIMEOUT_MS = 30_000

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium: apt-get install -y chromium")


DATA_ROOTS: dict[str, Path] = {}  # app url -> its data root


@pytest.fixture(scope="module")
def app_url(tmp_path_factory, facades_checkpoint, colorize_checkpoint):
    with running_app(tmp_path_factory.mktemp("browser_app"), facades_checkpoint, colorize_checkpoint) as served:
        DATA_ROOTS[served[0]] = served[1]["data"]
        yield served[0]


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@contextlib.contextmanager
def opened_page(browser, url: str):
    """A fresh page at 1280x800 that fails the test if anything is requested from outside the machine."""
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.set_default_timeout(TIMEOUT_MS)
    outside: list[str] = []
    page.on("request", lambda request: outside.append(request.url)
            if request.url.startswith(("http:", "https:", "ws:", "wss:")) and "127.0.0.1" not in request.url else None)
    page.goto(url)
    page.wait_for_selector("#facade-canvas canvas")
    page.wait_for_selector("#facade-photo img")  # the first render on page load
    yield page
    page.close()
    assert not outside, f"the page loaded things from outside the machine: {outside[:5]}"


@pytest.fixture
def page(browser, app_url):
    with opened_page(browser, app_url) as page:
        yield page


@pytest.fixture(scope="module")
def looked_at_page(browser, app_url):
    """One desktop page for the tests that only look at it (each opens its tab first, and clicks nothing else): a
    page load is ~4.5 s of chromium's CPU here."""
    with opened_page(browser, app_url) as page:
        yield page


@pytest.fixture(scope="module")
def phone(browser, app_url):
    """One 390x844 page for the tests that only look at the phone layout (each opens its tab first)."""
    phone = browser.new_page(viewport={"width": 390, "height": 844})
    phone.goto(app_url)
    yield phone
    phone.close()


def screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def image_src(page, selector: str) -> str | None:
    element = page.locator(f"{selector} img")
    return element.first.get_attribute("src") if element.count() else None


def wait_for_new_image(page, selector: str, old_src: str | None) -> str:
    """The src of the selector's image once it differs from old_src; a screenshot is kept if it never does."""
    try:
        page.wait_for_function(
            "([selector, old]) => { const img = document.querySelector(selector + ' img');"
            " return img && img.complete && img.src && img.src !== old; }", arg=[selector, old_src])
    except Exception:
        screenshot(page, f"no_new_image_{selector.strip('#')}")
        raise
    return image_src(page, selector)


def fetch_image(page, src: str) -> Image.Image:
    response = page.request.get(src)
    assert response.ok, f"could not fetch {src}: {response.status}"
    return Image.open(io.BytesIO(response.body())).convert("RGB")


def choose(page, dropdown_id: str, option: str) -> None:
    page.locator(f"#{dropdown_id} input").click()
    page.get_by_role("option", name=option).click()


def draw_stroke(page, start=(0.3, 0.75), end=(0.7, 0.8), steps: int = 5) -> None:
    """A stroke across the canvas, once nothing (a swatch popup, a layout shift) covers its two ends."""
    box = page.locator("#facade-canvas canvas").first.bounding_box()
    (x0, y0), (x1, y1) = [(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy) for fx, fy in (start, end)]
    page.wait_for_function(
        "(points) => points.every(([x, y]) => { const hit = document.elementFromPoint(x, y);"
        " return hit && hit.tagName === 'CANVAS' && hit.closest('#facade-canvas'); })",
        arg=[[x0, y0], [x1, y1]], timeout=10_000)
    page.mouse.move(x0, y0)
    page.mouse.down()
    for i in range(1, steps + 1):
        page.mouse.move(x0 + (x1 - x0) * i / steps, y0 + (y1 - y0) * i / steps)
    page.mouse.up()


# JS: the background colour an element is drawn on (of its first ancestor that has one), as [r, g, b]
BACKGROUND_OF = """element => { let e = element;
    while (e && ["rgba(0, 0, 0, 0)", "transparent"].includes(getComputedStyle(e).backgroundColor)) e = e.parentElement;
    return (e ? getComputedStyle(e).backgroundColor : "rgb(255, 255, 255)").match(/[\\d.]+/g).slice(0, 3).map(Number);
}"""


def drawn_extent(page, selector: str) -> tuple[dict, dict]:
    """Where the picture at `selector` is drawn on the screen, and its element's content box (x, y, width, height
    in page pixels): what differs from the background, along the content box's middle row and column (the block's
    label and border may lie over its edges)."""
    picture = page.locator(selector).first
    background = np.array(picture.evaluate(BACKGROUND_OF))
    top, right, bottom, left = picture.evaluate("""img => { const s = getComputedStyle(img);
        return ["Top", "Right", "Bottom", "Left"].map(side =>
            parseFloat(s["padding" + side]) + parseFloat(s["border" + side + "Width"])); }""")
    border_box = picture.bounding_box()
    content = {"x": border_box["x"] + left, "y": border_box["y"] + top,
               "width": border_box["width"] - left - right, "height": border_box["height"] - top - bottom}
    shown = np.asarray(Image.open(io.BytesIO(page.screenshot(clip=content))).convert("RGB"), np.int16)
    drawn = np.abs(shown - background).sum(-1) > 30
    across, down = np.nonzero(drawn[drawn.shape[0] // 2])[0], np.nonzero(drawn[:, drawn.shape[1] // 2])[0]
    assert len(across) and len(down), "nothing is drawn"
    return ({"x": content["x"] + across.min(), "y": content["y"] + down.min(), "width": np.ptp(across) + 1,
             "height": np.ptp(down) + 1}, content)


def relative_luminance(rgb) -> float:
    """WCAG 2's relative luminance of an sRGB colour (0-255 channels)."""
    linear = [v / 255 / 12.92 if v / 255 <= 0.03928 else ((v / 255 + 0.055) / 1.055) ** 2.4 for v in rgb]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


# ------------------------------------------------------------------------------------------ tests
def test_stroke_on_canvas_changes_the_generated_photo(page):
    before_src = image_src(page, "#facade-photo")
    before = fetch_image(page, before_src)
    screenshot(page, "facades_start")
    page.get_by_role("button", name="Color").click()
    page.locator("#facade-canvas button.color").nth(11).click()  # shop: a colour unlike the example's
    page.keyboard.press("Escape")  # the swatch popup covers the middle of the canvas; draw below it
    draw_stroke(page)
    after_src = wait_for_new_image(page, "#facade-photo", before_src)
    after = fetch_image(page, after_src)
    assert after.size == before.size
    assert np.abs(np.asarray(after, np.float32) - np.asarray(before, np.float32)).mean() > 0.1
    labels = fetch_image(page, image_src(page, "#facade-labels"))
    shop = facade_classes()[11].rgb
    assert (np.asarray(labels) == shop).all(-1).sum() > 50, "the stroke's colour is not in the snapped label map"
    screenshot(page, "facades_after_stroke")


def test_rectangle_from_two_clicks(page):
    """Two clicks on the snapped map fill a rectangle; the first corner is marked on the map (it was said in words
    only) while the rectangle is begun, and gone once it is filled."""
    choose(page, "facade-rect-class", "door")
    old_src = image_src(page, "#facade-labels")
    box = page.locator("#facade-labels img").bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.25, box["y"] + box["height"] * 0.25)
    page.wait_for_function("() => document.querySelector('#facade-rect-hint').innerText.includes('First corner')")
    x, y = (int(v) for v in page.locator("#facade-rect-hint").inner_text().split("(")[1].split(")")[0].split(","))
    marked_src = wait_for_new_image(page, "#facade-labels", old_src)
    white = (255, 255, 255)  # no class colour: the marker's
    assert fetch_image(page, marked_src).getpixel((x, y)) == white, "the first corner is not marked on the map"
    page.mouse.click(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.45)
    new_src = wait_for_new_image(page, "#facade-labels", marked_src)
    labels = np.asarray(fetch_image(page, new_src))
    assert not (labels == white).all(axis=-1).any(), "the first corner's marker stayed on the filled map"
    door = np.array(facade_classes()[3].rgb)
    height, width = labels.shape[:2]
    inside = labels[int(height * 0.28):int(height * 0.42), int(width * 0.28):int(width * 0.47)]
    assert (inside == door).all(), "the rectangle is not filled with the chosen class"
    screenshot(page, "facades_rectangle")


def test_colorize_an_upload(page, tmp_path):
    yy, xx = np.mgrid[0:150, 0:220]
    photo = np.stack([xx % 256, yy % 256, (xx * 2) % 256], -1).astype(np.uint8)
    path = tmp_path / "upload.png"
    Image.fromarray(photo).save(path)
    page.get_by_role("tab", name="Colorize").click()
    page.locator("#colorize-input input[type=file]").set_input_files(str(path))
    result_src = wait_for_new_image(page, "#colorize-output", None)
    assert fetch_image(page, result_src).size == (220, 150)
    gray = fetch_image(page, wait_for_new_image(page, "#colorize-gray", None))
    assert np.ptp(np.asarray(gray, np.int16), axis=-1).max() <= 2, "the input shown is not gray"
    screenshot(page, "colorize")


def test_quick_demo_training_then_use_the_model(page):
    page.get_by_role("tab", name="Train").click()
    page.locator("#train-epochs input").fill("500")  # long enough that Stop, not the schedule, ends it
    page.locator("#train-start").click()
    page.wait_for_function("() => document.querySelector('#train-note').innerText.includes('Started')")
    page.wait_for_function("() => document.querySelector('#train-status').innerText.includes('running')")
    first_sample = wait_for_new_image(page, "#train-sample", None)
    wait_for_new_image(page, "#train-sample", first_sample)  # a second sample: the grid updates live
    page.wait_for_selector("#train-plot canvas, #train-plot svg")
    assert "img/s" in page.locator("#train-progress").inner_text()
    # a 384 x 128 Quick demo strip was small in a box of white; drawn larger, it stays below the box's label
    drawn, box = drawn_extent(page, "#train-sample img")
    assert drawn["width"] >= 0.9 * box["width"] or drawn["height"] >= 0.9 * box["height"], (drawn, box)
    label = page.locator("#train-sample label[data-testid=block-label]").bounding_box()
    assert drawn["y"] >= label["y"] + label["height"], (drawn, label)
    screenshot(page, "train_running")

    second = page.context.browser.new_page()  # a second viewer (or a reload) sees the same run
    second.goto(page.url)
    second.get_by_role("tab", name="Train").click()
    second.wait_for_function("() => /running|stopping/.test(document.querySelector('#train-status').innerText)")
    second.close()

    page.locator("#train-stop").click()
    page.wait_for_function("() => document.querySelector('#train-status').innerText.includes('stopped')")
    # the reply to Stop goes once the run has ended (it stayed: "Stopping ..." beside "stopped")
    page.wait_for_function("() => !document.querySelector('#train-note').innerText.includes('Stopping')")
    status = page.locator("#train-status").inner_text()
    model_name = status.split("model '")[1].split("'")[0]
    screenshot(page, "train_stopped")

    page.get_by_role("tab", name="Facades").click()
    before = image_src(page, "#facade-photo")
    time.sleep(0.5)  # let the tab's picker refresh land before opening it
    choose(page, "facade-model", model_name)
    wait_for_new_image(page, "#facade-photo", before)
    assert page.locator("#facade-model input").input_value() == model_name
    screenshot(page, "facades_with_trained_model")


@pytest.fixture(scope="module")
def unpaired_model(tmp_path_factory) -> Path:
    """A CycleGAN trained for 2 steps on red vs blue pictures, exported with both generators as the Train tab
    exports one (direction "both")."""
    from pix2pix_core.checkpoint import export_generator
    from pix2pix_core.config import cyclegan_config
    from pix2pix_core.train import Trainer

    root = tmp_path_factory.mktemp("red2blue")
    write_collection(root / "trainA", 2, (200, 60, 40), seed=1)
    write_collection(root / "trainB", 2, (40, 90, 210), seed=2)
    config = cyclegan_config(data=str(root), out=str(root / "run"), netG="resnet_6blocks", ngf=4, ndf=4, crop_size=32,
                             load_size=36, batch_size=1, epochs=1, epochs_decay=0, max_steps=2, sample_every=0,
                             save_every=0, precision="fp32", seed=0)
    result = Trainer(config).run()
    return export_generator(result.checkpoint, root / "unpaired_tiny.safetensors", direction="both")


@pytest.fixture(scope="module")
def custom_model(tmp_path_factory) -> Path:
    """A pix2pix model of task aligned (custom A|B images), 2 steps, exported as the Train tab exports one."""
    from conftest import tiny_config, write_aligned
    from pix2pix_core.checkpoint import export_generator
    from pix2pix_core.train import Trainer

    root = tmp_path_factory.mktemp("pairs")
    write_aligned(root / "train", 2, seed=4)
    result = Trainer(tiny_config(task="aligned", data=str(root), out=str(root / "run"), max_steps=2)).run()
    return export_generator(result.checkpoint, root / "custom_tiny.safetensors")


def test_translate_section_says_how_to_get_a_model_until_there_is_one(browser, tmp_path_factory, facades_checkpoint,
                                                                     colorize_checkpoint, custom_model):
    """With no model of the user's own, the section's picker was empty and nothing said why until Translate was
    pressed: a plain hint says to train one above; it goes once a model is listed (here one whose run ended
    while the section was open: clicking the picker lists it). An app of its own: the module's has trained some."""
    folder = tmp_path_factory.mktemp("no_own_models")
    with running_app(folder, facades_checkpoint, colorize_checkpoint) as (url, _), opened_page(browser, url) as page:
        page.get_by_role("tab", name="Train").click()
        page.get_by_text("Translate with a model trained on your own data").click()
        hint = page.locator("#translate-no-model")
        hint.wait_for(state="visible")
        assert "Train one above" in hint.inner_text()
        assert "--" not in page.locator("#translate-help").inner_text()  # the command line's details: the README
        models = folder / "runs" / "models"
        models.mkdir(parents=True, exist_ok=True)
        shutil.copy(custom_model, models / "custom_tiny.safetensors")
        page.locator("#translate-model input").click()
        page.get_by_role("option", name="custom_tiny").wait_for()
        hint.wait_for(state="hidden")


# Every toast message the page shows, in order, kept after it is closed (a page's toasts of one kind share a box)
RECORD_TOASTS = """
window.toastTexts = [];
new MutationObserver(() => {
  for (const text of document.querySelectorAll('[data-testid="toast-text"]'))
    if (!window.toastTexts.includes(text)) window.toastTexts.push(text);
}).observe(document, {childList: true, subtree: true});
"""


def test_without_a_facades_model_the_tab_says_so_once_and_still_edits(browser, tmp_path_factory, facades_checkpoint,
                                                                     colorize_checkpoint):
    """Started without models (a wheel's install, another --checkpoints), every page load showed three toasts
    ("no facades model found", twice as errors, once as a warning) and Clear, Random and Upload failed whole: the
    canvas did not change. A hint under the empty photo says why and how instead; the map still snaps; and a model
    put in the folder is listed when the tab is opened again, rendering the photo and hiding the hint."""
    from pix2pix_core.checkpoint import export_generator

    folder = tmp_path_factory.mktemp("no_models")
    empty = folder / "no_checkpoints"
    empty.mkdir()
    with running_app(folder, facades_checkpoint, colorize_checkpoint, extra_args=("--checkpoints", str(empty))) \
            as (url, _):
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.set_default_timeout(TIMEOUT_MS)
        page.add_init_script(RECORD_TOASTS)
        try:
            page.goto(url)
            hint = page.locator("#facade-no-model")
            hint.wait_for(state="visible")
            assert "--checkpoints" in hint.inner_text()
            # the page load's render: the snapped map as the app's own file (the layout's first value is Gradio's)
            page.wait_for_function("() => document.querySelector('#facade-labels img')?.src.endsWith('/labels.png')")
            old = image_src(page, "#facade-labels")
            page.get_by_role("button", name="Clear", exact=True).click()
            wait_for_new_image(page, "#facade-labels", old)  # the plain facade: Clear works without a model
            # No toast, checked after one that must come: a bad upload's warning. The page load's and Clear's events
            # sent theirs earlier on the same event stream; each message is recorded as it shows, one gone too.
            bad = folder / "broken.jpg"
            bad.write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 200)
            with page.expect_file_chooser() as chooser:
                page.get_by_role("button", name="Upload label map", exact=True).click()
            chooser.value.set_files(str(bad))
            page.locator(".toast-body", has_text="broken.jpg:").wait_for()
            toasts = page.evaluate("() => window.toastTexts.map(text => text.textContent)")
            assert len(toasts) == 1 and "broken.jpg:" in toasts[0], toasts
            assert page.locator("#facade-photo img").count() == 0
            export_generator(facades_checkpoint, empty / "facades_tiny.safetensors")
            page.get_by_role("tab", name="Colorize").click()
            page.locator("#colorize-no-model").wait_for(state="visible")  # that tab says so too
            page.get_by_role("tab", name="Facades").click()  # opening the tab rescans the models folder
            wait_for_new_image(page, "#facade-photo", None)
            hint.wait_for(state="hidden")
        finally:
            page.close()


def test_translate_section_runs_a_custom_pix2pix_model_its_own_way(page, app_url, custom_model, tmp_path):
    """A custom (A|B) pix2pix model trained in the app was usable nowhere in it: the Translate section lists it
    and translates a picture at its size, without the direction (a CycleGAN's choice) on show."""
    models = DATA_ROOTS[app_url].parent / "runs" / "models"
    models.mkdir(parents=True, exist_ok=True)
    shutil.copy(custom_model, models / "custom_tiny.safetensors")
    picture = tmp_path / "pair_input.png"
    Image.new("RGB", (48, 36), (90, 140, 60)).save(picture)
    try:
        page.get_by_role("tab", name="Train").click()
        page.get_by_text("Translate with a model trained on your own data").click()
        choose(page, "translate-model", "custom_tiny")
        page.wait_for_function("() => !document.querySelector('#translate-direction')?.checkVisibility()")
        page.locator("#translate-input input[type=file]").set_input_files(str(picture))
        page.locator("#translate-button").click()
        assert fetch_image(page, wait_for_new_image(page, "#translate-output", None)).size == (48, 36)
    finally:
        (models / "custom_tiny.safetensors").unlink()  # the other tests' section lists the unpaired model first


def test_translate_section_runs_an_unpaired_model_both_ways(page, app_url, unpaired_model, tmp_path):
    """The Train tab's Translate section: a CycleGAN model that appeared after the page loaded is offered when
    the section opens, and translates an upload A -> B and B -> A at the upload's size."""
    models = DATA_ROOTS[app_url].parent / "runs" / "models"
    models.mkdir(parents=True, exist_ok=True)
    shutil.copy(unpaired_model, models / "unpaired_tiny.safetensors")
    picture = tmp_path / "red.png"
    Image.new("RGB", (50, 30), (200, 40, 40)).save(picture)

    page.get_by_role("tab", name="Train").click()
    page.get_by_text("Translate with a model trained on your own data").click()
    page.wait_for_function("() => document.querySelector('#translate-model input').value === 'unpaired_tiny'")
    page.locator("#translate-input input[type=file]").set_input_files(str(picture))
    page.locator("#translate-button").click()
    there = fetch_image(page, wait_for_new_image(page, "#translate-output", None))
    assert there.size == (50, 30)

    back, src = there, image_src(page, "#translate-output")  # read before the click: a fast reply beats a later read
    page.locator("#translate-direction").get_by_text("B → A").click()
    page.locator("#translate-button").click()
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while np.array_equal(np.asarray(back), np.asarray(there)):  # the other generator paints another picture
        assert time.monotonic() < deadline, "B -> A gave the same picture as A -> B"
        src = wait_for_new_image(page, "#translate-output", src)
        back = fetch_image(page, src)
    assert back.size == (50, 30)
    screenshot(page, "translate_unpaired")


def test_a_one_direction_cyclegan_file_gets_its_direction_picked(page, app_url, unpaired_model, tmp_path):
    """A CycleGAN export of F alone (B -> A) was offered with the page's A -> B picked, so its first Translate
    failed ("holds the B -> A generator only"); choosing such a file picks the direction it holds."""
    from pix2pix_core.checkpoint import export_generator

    models = DATA_ROOTS[app_url].parent / "runs" / "models"
    models.mkdir(parents=True, exist_ok=True)
    one_way = models / "b_only_tiny.safetensors"  # first in the picker's order
    export_generator(unpaired_model, one_way, direction="BtoA")
    picture = tmp_path / "blue.png"
    Image.new("RGB", (40, 24), (40, 90, 210)).save(picture)
    try:
        page.get_by_role("tab", name="Train").click()
        page.get_by_text("Translate with a model trained on your own data").click()
        page.wait_for_function("() => document.querySelector('#translate-model input').value === 'b_only_tiny'")
        page.wait_for_function("() => document.querySelector('#translate-direction input[value=BtoA]')?.checked")
        page.locator("#translate-input input[type=file]").set_input_files(str(picture))
        page.locator("#translate-button").click()
        assert fetch_image(page, wait_for_new_image(page, "#translate-output", None)).size == (40, 24)
    finally:
        one_way.unlink()


def test_a_page_opened_after_a_failed_run_shows_it(browser, app_url, tmp_path):
    """Issue 15, finding 9: the Train tab of a page opened later shows the failed run, not "idle"."""

    client = app_client(app_url)
    odd_width_dataset(DATA_ROOTS[app_url])
    assert client.predict(task="facades", data_folder=ODD_WIDTHS, api_name="/train_start").startswith("Started")
    deadline = time.time() + 60
    while client.predict(api_name="/train_status")["running"]:
        assert time.time() < deadline
        time.sleep(0.5)
    for _ in range(2):  # two viewers, each on a fresh page
        viewer = browser.new_page(viewport={"width": 1280, "height": 800})
        viewer.goto(app_url)
        viewer.get_by_role("tab", name="Train").click()
        viewer.wait_for_function("() => document.querySelector('#train-status').innerText.includes('failed')",
                                 timeout=TIMEOUT_MS)
        assert "is not an A|B side-by-side pair" in viewer.locator("#train-status").inner_text()
        viewer.close()


def test_the_canvas_shows_no_progress_of_events_that_replace_it(app_url):
    """With the canvas in its loading state as a new map arrived (Random, Clear, Upload, a rectangle), it could
    stay under a "processing" overlay for good after a stroke (a race: 1 in 3 runs of stroke + Random), the
    mouse blocked. Every event that outputs the canvas shows its progress on the photos only."""
    config = json.loads(urllib.request.urlopen(f"{app_url}config", timeout=30).read())
    names = {c["id"]: c.get("props", {}).get("elem_id") for c in config["components"]}
    onto_canvas = [d for d in config["dependencies"] if any(names.get(o) == "facade-canvas" for o in d["outputs"])]
    assert len(onto_canvas) >= 5
    for dependency in onto_canvas:
        shown = [names.get(c) for c in dependency.get("show_progress_on") or dependency["outputs"]]
        assert "facade-canvas" not in shown, dependency.get("targets")


def test_a_bad_upload_leaves_the_drawing_on_the_canvas(page, tmp_path):
    """A corrupt label map was an error: Gradio marked every output failed, the canvas too (red "Error",
    no more painting). Now a warning, and the canvas keeps working."""
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 200)
    initial = wait_for_new_image(page, "#facade-labels", None)
    draw_stroke(page)
    labels_before = wait_for_new_image(page, "#facade-labels", initial)
    with page.expect_file_chooser() as chooser:
        page.get_by_role("button", name="Upload label map", exact=True).click()
    chooser.value.set_files(str(bad))
    page.wait_for_selector("text=broken.jpg:")  # the warning names the file and says why
    page.wait_for_timeout(500)
    assert page.locator("#facade-canvas .error, #facade-photo .error").count() == 0  # no "Error" badges
    assert image_src(page, "#facade-labels") == labels_before
    old_photo = image_src(page, "#facade-photo")
    draw_stroke(page, start=(0.2, 0.3), end=(0.8, 0.35))
    wait_for_new_image(page, "#facade-photo", old_photo)  # still paints


def test_a_typed_name_with_markup_shows_as_text_in_the_toast(page):
    """Gradio's toast renders a message as HTML: the folder typed as '<b>bold</b>' shows as those characters, not
    as bold text (an API client gets the message unescaped: test_app_api)."""
    page.get_by_role("tab", name="Train").click()
    page.locator("#train-data textarea, #train-data input").first.fill("<b>bold</b>")
    page.locator("#train-start").click()
    toast = page.locator(".toast-body", has_text="dataset folder not found")
    toast.wait_for()
    assert "'<b>bold</b>'" in toast.inner_text() and toast.locator("b").count() == 0, toast.inner_html()


def test_an_unreadable_photo_clears_the_colorize_results_without_error_badges(page, tmp_path):
    """An undecodable upload was a gr.Error: the message, but red "Error" badges on both results and the last
    photo's results kept beside it. Now a warning (as the Facades tab's bad upload), two empty results and an
    empty photo box."""
    good, bad = tmp_path / "good.png", tmp_path / "broken.jpg"
    Image.fromarray(np.full((60, 80, 3), 90, np.uint8)).save(good)
    bad.write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 200)
    page.get_by_role("tab", name="Colorize").click()
    page.locator("#colorize-input input[type=file]").set_input_files(str(good))
    wait_for_new_image(page, "#colorize-output", None)
    assert page.locator("#colorize-input img").count() == 1  # a photo that colorized stays in its box
    page.locator("#colorize-input input[type=file]").set_input_files(str(bad))
    page.locator(".toast-body.warning", has_text="broken.jpg:").wait_for()  # names the file and says why
    page.wait_for_function("() => !document.querySelector('#colorize-output img, #colorize-gray img')")
    assert page.locator("#colorize-output .error, #colorize-gray .error").count() == 0  # no "Error" badges
    assert page.locator(".toast-body.error").count() == 0
    # the photo box is emptied too: the file the browser could not draw either stayed as a broken-picture icon
    page.wait_for_function("() => !document.querySelector('#colorize-input img')")


def test_replacing_the_photo_colorizes_it_once(page, tmp_path):
    """Dropping a photo onto one already shown changed the input twice: two identical colorize runs."""
    paths = []
    for index in range(2):
        path = tmp_path / f"photo{index}.png"
        Image.fromarray(np.full((60, 80, 3), 60 + 90 * index, np.uint8)).save(path)
        paths.append(path)
    page.get_by_role("tab", name="Colorize").click()
    page.locator("#colorize-input input[type=file]").set_input_files(str(paths[0]))
    first = wait_for_new_image(page, "#colorize-output", None)
    joins = []
    page.on("request", lambda request: joins.append(request.url) if "queue/join" in request.url else None)
    page.locator("#colorize-input input[type=file]").set_input_files(str(paths[1]))
    wait_for_new_image(page, "#colorize-output", first)
    page.wait_for_timeout(1500)
    assert len(joins) == 1, joins


def test_no_picture_offers_a_share_button(app_url):
    """Gradio's Share button only says "Must be on Spaces to share": the gray image, the training sample and the
    unpaired result showed it."""
    config = json.loads(urllib.request.urlopen(f"{app_url}config", timeout=30).read())
    pictures = [c["props"] for c in config["components"]
                if c["type"] == "image" and c["props"].get("interactive") is False]
    assert len(pictures) >= 5
    for props in pictures:
        assert props.get("buttons") is not None and "share" not in props["buttons"], props.get("elem_id")


def test_a_new_seed_renders_a_new_photo(page):
    """Strokes and model changes re-rendered; a seed typed in did not, until Generate."""
    old = wait_for_new_image(page, "#facade-photo", None)
    page.locator("#facade-seed input").fill("7")
    wait_for_new_image(page, "#facade-photo", old)


def test_the_train_form_shows_the_fields_of_its_task(page):
    """The Unpaired task showed λ L1, the input side and DiffAugment, none of which a CycleGAN run uses; facades
    and colorize showed the input side, which their runs ignore (facades' label map is B, photos have no halves)."""
    page.get_by_role("tab", name="Train").click()
    fields = ("#train-lambda-l1", "#train-direction", "#train-diff-augment")
    assert not page.locator("#train-direction").is_visible()
    assert page.locator("#train-lambda-l1").is_visible() and page.locator("#train-diff-augment").is_visible()
    choose(page, "train-task", "Custom: A|B images")
    page.wait_for_function("() => document.querySelector('#train-direction')?.checkVisibility()")
    assert all(page.locator(field).is_visible() for field in fields)
    choose(page, "train-task", "Unpaired (CycleGAN)")
    page.wait_for_function("() => !document.querySelector('#train-lambda-l1')?.checkVisibility()")
    assert not any(page.locator(field).is_visible() for field in fields)
    choose(page, "train-task", "Colorize: gray → colour")
    page.wait_for_function("() => document.querySelector('#train-lambda-l1')?.checkVisibility()")
    assert not page.locator("#train-direction").is_visible() and page.locator("#train-diff-augment").is_visible()


def test_a_reload_during_a_run_shows_the_runs_settings(browser, app_url):
    """A reload (or a second browser) during a run showed the run's live status beside the form's defaults, as
    if they were training. The page now shows the run's settings, with its task's fields only; the restored task
    and preset do not reset the other fields (their handlers answer the user's choices only), and what the user
    types afterwards stays (the restore is once per page load, not on the timer's ticks)."""
    client = app_client(app_url)
    started = client.predict(task="aligned", data_folder="facades", direction="BtoA", preset="Standard (paper)",
                             epochs=300, epochs_decay=7, batch_size=2, lambda_l1=25, lr=1e-4, ngf=8,
                             diff_augment=True, api_name="/train_start")
    assert started.startswith("Started aligned-")
    viewer = browser.new_page(viewport={"width": 1280, "height": 800})
    try:
        viewer.goto(app_url)
        viewer.get_by_role("tab", name="Train").click()
        form = """() => { const q = (s) => document.querySelector(s);
            return [q('#train-task input')?.value, q('#train-data textarea, #train-data input')?.value,
                    q('#train-direction input:checked')?.value, q('#train-preset input:checked')?.value,
                    q('#train-epochs input')?.value, q('#train-lambda-l1 input')?.value,
                    q('#train-start-from input')?.value, q('#train-diff-augment input')?.checked,
                    !!q('#train-direction')?.checkVisibility()].join(' | '); }"""
        restored = "Custom: A|B images | facades | BtoA | Standard (paper) | 300 | 25 | from scratch | true | true"
        try:
            viewer.wait_for_function(f"() => ({form})() === {json.dumps(restored)}", timeout=TIMEOUT_MS)
        except Exception:
            screenshot(viewer, "reload_during_a_run")
            raise AssertionError(f"the form shows {viewer.evaluate(form)!r}, not the run's {restored!r}") from None
        viewer.wait_for_timeout(2500)  # two timer ticks, and any handler a restored value would fire
        assert viewer.evaluate(form) == restored
        for label, value in (("Decay epochs", "7"), ("Batch size", "2"), ("Learning rate", "0.0001")):
            assert viewer.get_by_label(label).input_value() == value, label
        assert "facades in the data root, 4 training images" in viewer.locator("#train-dataset").inner_text()
        viewer.locator("#train-epochs input").fill("42")  # typed while the run goes
        viewer.wait_for_timeout(2500)
        assert viewer.locator("#train-epochs input").input_value() == "42"
        # the user's own choices still fill the form and the dataset line
        viewer.locator("#train-preset").get_by_text("Quick demo").click()
        viewer.wait_for_function("() => document.querySelector('#train-epochs input').value === '10'")
        viewer.locator("#train-data textarea, #train-data input").first.fill("missing")
        viewer.wait_for_function("() => document.querySelector('#train-dataset').innerText.includes('not found')")
        viewer.locator("#train-data textarea, #train-data input").first.fill("")
        choose(viewer, "train-task", "Custom: A/ and B/ folders")
        viewer.wait_for_function("says => document.querySelector('#train-dataset').innerText.includes(says)",
                                 arg="for the task 'Custom: A/ and B/ folders'")
        assert viewer.locator("#train-direction input:checked").get_attribute("value") == "AtoB"
    finally:
        viewer.close()
        client.predict(api_name="/train_stop")
        deadline = time.time() + 60
        while client.predict(api_name="/train_status")["running"]:
            assert time.time() < deadline
            time.sleep(0.5)


def test_long_dropdown_names_are_not_cut_on_a_phone_screen(browser, app_url):
    """At 420 px the task picker shared its row with the preset, and "Facades: labels → photo" ran under the
    dropdown's arrow (and the Facades model picker's "facades_label2photo"): such pickers wrap below instead."""
    text_end_past_arrow = """input => {
        const style = getComputedStyle(input), ruler = document.createElement("canvas").getContext("2d");
        ruler.font = style.font;
        const end = input.getBoundingClientRect().left + parseFloat(style.paddingLeft)
            + ruler.measureText(input.value).width;
        return end - input.parentElement.querySelector(".icon-wrap").getBoundingClientRect().left;
    }"""
    page = browser.new_page(viewport={"width": 420, "height": 900})
    try:
        page.goto(app_url)
        page.get_by_role("tab", name="Train").click()
        field = page.locator("#train-task input").first
        for name in ("Facades: labels → photo", "Custom: A/ and B/ folders"):
            field.click()
            page.get_by_role("option", name=name).click()
            assert field.input_value() == name
            past = field.evaluate(text_end_past_arrow)
            assert past <= 0, f"{name!r} runs {past:.0f} px under the arrow"
    finally:
        page.close()


def test_bold_text_is_drawn_in_the_pages_font(looked_at_page):
    """Gradio 6.31's Source Sans Pro SemiBold file has no Latin letters: every button, heading and bold word was
    drawn in a fallback font (DejaVu Sans Bold), bold words larger than the text around them."""
    widths = looked_at_page.evaluate("""async () => {
        const text = "New variation Start training", out = {};
        const width = (family, weight) => {
            const span = document.createElement("span");
            span.style.cssText = `font: ${weight} 20px ${family}; position: absolute; white-space: nowrap`;
            span.textContent = text;
            document.body.appendChild(span);
            const wide = span.getBoundingClientRect().width;
            span.remove();
            return wide; };
        for (const weight of [600, 700]) {
            await document.fonts.load(`${weight} 20px "Source Sans Pro"`, text);
            out[weight] = [width('"Source Sans Pro", monospace', weight), width('"Source Sans Pro", serif', weight)];
        }
        return out; }""")
    for weight, (then_monospace, then_serif) in widths.items():  # equal when no letter falls back to either
        assert then_monospace == then_serif, f"weight {weight}: some letters fall back to another font"


def test_the_dataset_zip_box_label_leaves_its_upload_icon_uncovered(phone):
    """At 390 px the box's label ("…or upload a dataset zip") covered the top of its upload arrow."""
    phone.get_by_role("tab", name="Train").click()
    box = phone.locator(".block", has=phone.locator("input[type=file][accept='.zip']")).first
    box.locator("[data-testid=upload-icon]").wait_for()
    label = box.locator("label[data-testid=block-label]").bounding_box()
    icon = box.locator("[data-testid=upload-icon]").bounding_box()
    assert label["y"] + label["height"] <= icon["y"], (label, icon)


def test_the_sample_label_stays_clear_of_its_buttons_on_a_phone(phone):
    """The sample's label spelled its panels out (CycleGAN: a | G(a) | F(G(a)) | ...): at 390 px it wrapped to two
    lines and ran under the picture's download and fullscreen buttons. The panels are said below the picture."""
    phone.get_by_role("tab", name="Train").click()
    label = phone.locator("#train-sample label[data-testid=block-label]")
    label.wait_for()
    block = phone.locator("#train-sample").bounding_box()
    box = label.bounding_box()
    assert box["height"] < 30 and box["x"] + box["width"] < block["x"] + block["width"] - 70, (box, block)
    assert phone.get_by_text("Left to right: the input, the model's output").is_visible()


def test_a_phone_shows_the_colorize_examples_on_its_first_screen(phone, looked_at_page):
    """On a 390x844 phone the examples sat below the photo and two tall empty result boxes: a first-time user did
    not see them without scrolling. They come right under the photo; a desktop keeps the three pictures in a row."""
    for viewer in (phone, looked_at_page):
        height = viewer.viewport_size["height"]
        viewer.get_by_role("tab", name="Colorize").click()
        viewer.evaluate("window.scrollTo(0, 0)")  # the first screen: a page shared with other tests, unscrolled
        example = viewer.locator("#colorize-examples button").first
        example.wait_for()
        box = example.bounding_box()
        assert box["y"] + box["height"] / 2 < height, (viewer.viewport_size, box)  # on the first screen
        tops = [viewer.locator(f"#{name}").bounding_box()["y"] for name in
                ("colorize-input", "colorize-gray", "colorize-output")]
        if viewer.viewport_size["width"] > 1000:
            assert max(tops) - min(tops) < 5, tops


def test_a_line_says_what_the_loss_plots_are_before_they_draw(looked_at_page):
    """Before a run's first steps the two loss plots were bare boxes with a chart icon (their titles come with their
    data). A line above them says what they will show; a block label on the plots cut their legend (240 px)."""
    page = looked_at_page
    page.get_by_role("tab", name="Train").click()
    note = page.locator("#train-plots-note")
    note.wait_for()
    assert "GAN losses and L1 losses" in note.inner_text()
    plots = [page.locator(f"#{name}").bounding_box() for name in ("train-plot", "train-plot-l1")]
    assert note.bounding_box()["y"] + note.bounding_box()["height"] <= min(plot["y"] for plot in plots)
    assert not page.locator("#train-plot label[data-testid=block-label]").count()


def test_the_dataset_folder_says_what_the_chosen_task_reads(page):
    """The folder's placeholder said "empty: <data root>/facades or /food" whatever the task; a custom or unpaired
    run refuses an empty folder. It says what the chosen task reads, or what an empty folder trains on."""
    page.get_by_role("tab", name="Train").click()
    field = "#train-data textarea, #train-data input"
    assert "<data root>/facades" in page.locator(field).first.get_attribute("placeholder")
    for task, says in (("Unpaired (CycleGAN)", "trainA/ and trainB/"), ("Custom: A|B images", "A|B side-by-side"),
                       ("Custom: A/ and B/ folders", "holding A/ and B/"), ("Colorize: gray → colour", "/food")):
        choose(page, "train-task", task)
        page.wait_for_function("([field, says]) => document.querySelector(field).placeholder.includes(says)",
                               arg=[field, says])
        assert "facades" not in page.locator(field).first.get_attribute("placeholder"), task


def test_the_training_progress_line_is_readable(looked_at_page):
    """The step, speed and ETA under the progress bar were drawn in the subdued grey (#bbbbc2 on white: 1.9:1).
    Text needs a contrast of at least 4.5:1 (WCAG AA)."""
    page = looked_at_page
    page.get_by_role("tab", name="Train").click()
    text = page.locator("#train-progress-text")
    text.wait_for()
    colours = [text.evaluate("e => getComputedStyle(e).color.match(/[\\d.]+/g).slice(0, 3).map(Number)"),
               text.evaluate(BACKGROUND_OF)]
    lighter, darker = sorted((relative_luminance(colour) for colour in colours), reverse=True)
    ratio = (lighter + 0.05) / (darker + 0.05)
    assert ratio >= 4.5, f"contrast {ratio:.1f}:1"


def test_translate_without_a_picture_is_a_warning_without_an_error_badge(page):
    """Translate pressed with no picture (or with no model of the user's own yet) was an error: the toast and a red
    "Error" badge in the result box. A warning and an empty result, as the Colorize tab's unusable photo."""
    page.get_by_role("tab", name="Train").click()
    page.get_by_text("Translate with a model trained on your own data").click()
    page.locator("#translate-button").click()
    page.locator(".toast-body.warning", has_text="no image given").wait_for()
    page.wait_for_timeout(500)
    assert page.locator("#translate-output .error").count() == 0  # no "Error" badge
    assert page.locator(".toast-body.error").count() == 0
