"""Stroke-to-photo latency of the Facades tab in a real browser; prints a table.

    python app.py --port 7860 &             # the app under test, with its bundled models
    python -m benchmarks.stroke_latency --url http://127.0.0.1:7860/ --strokes 10

Drives Debian's chromium with Playwright (never `playwright install`): draws short strokes on the canvas
and times from the mouse release to the moment the new generated photo has loaded in the page. For
the split between browser and server, compare with a `gradio_client` call of `/facade` on the same map
(upload + snap + generator + download, no canvas): the rest is the browser exporting and uploading the
canvas layers and rendering the result.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def current_src(page) -> str | None:
    element = page.locator("#facade-photo img")
    return element.first.get_attribute("src") if element.count() else None


def stroke_seconds(page, index: int) -> float:
    """One horizontal stroke in a new colour at a height that moves with index; seconds from mouse-up to the new photo."""
    page.get_by_role("button", name="Color").click()
    page.locator("#facade-canvas button.color").nth(2 + index % 10).click()  # a new class each stroke
    page.keyboard.press("Escape")  # the swatch popup covers the middle of the canvas
    box = page.locator("#facade-canvas canvas").first.bounding_box()
    y = box["y"] + box["height"] * (0.62 + 0.025 * (index % 11))  # below the swatch popup, inside the image
    x0, x1 = box["x"] + box["width"] * 0.3, box["x"] + box["width"] * 0.6
    old = current_src(page)
    page.mouse.move(x0, y)
    page.mouse.down()
    page.mouse.move(x1, y, steps=3)
    page.mouse.up()
    start = time.perf_counter()
    page.wait_for_function(
        "old => { const img = document.querySelector('#facade-photo img');"
        " return img && img.complete && img.naturalWidth > 0 && img.src !== old; }", arg=old, polling=10,
        timeout=15_000)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:7860/")
    parser.add_argument("--strokes", type=int, default=10)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()

    from playwright.sync_api import TimeoutError as PlaywrightTimeout, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        start = time.perf_counter()
        page.goto(args.url)
        page.wait_for_selector("#facade-canvas canvas")
        page.wait_for_selector("#facade-photo img")
        page_ready = time.perf_counter() - start
        stroke_seconds(page, 0)  # warm-up: the first request pays for lazy set-up in browser and server
        times, missed = [], []
        for i in range(1, args.strokes + 1):
            try:
                times.append(stroke_seconds(page, i))
            except PlaywrightTimeout:
                missed.append(i)
                page.screenshot(path=f"stroke_missed_{i}.png")
        browser.close()

    print(f"page load to first generated photo: {page_ready:.2f} s\n")
    print(f"{'strokes':>7} | {'p50 (s)':>7} {'p95 (s)':>7} {'min (s)':>7} {'max (s)':>7}")
    print(f"{len(times):>7} | {statistics.median(times):7.2f} {np.percentile(times, 95):7.2f} "
          f"{min(times):7.2f} {max(times):7.2f}")
    if missed:
        print(f"no new photo within 15 s after strokes {missed} (screenshots stroke_missed_*.png)")


if __name__ == "__main__":
    main()
