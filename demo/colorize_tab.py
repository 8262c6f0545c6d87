"""Tab "Colorize": a photo in, the gray version the model sees and its colorization out, at full size.

The model predicts colour at its training size; `Translator` upsamples only the colour and keeps the
photo's own full-resolution lightness, so the result has the upload's exact size and sharpness.

Photos above image_work.LARGE_PIXELS show a progress bar (waiting for the large-photo lane, gray
version, colour, saving); they run in the large lane, so they never hold up the other tab's requests.
"""

from __future__ import annotations

import gradio as gr
from PIL import Image

from pix2pix_core.errors import Pix2PixError
from pix2pix_core.inference import grayscale
from pix2pix_core.limits import SEED_MAX, seed_value

from .choices import Picker, Seed
from .image_work import LARGE_PIXELS
from .state import EXAMPLES, AppState
from .ui import image_endpoint, on_upload, user_errors, warn_on_error
from .uploads import ImageUpload

TASK = "colorize"
NO_MODEL_HINT = ("**No colorize model here yet**: start the app with `--checkpoints` naming a folder of models (the "
                 "bundled ones are in the repository's `checkpoints/`), or train one in the Train tab (task "
                 "*Colorize*).")


def example_photos() -> list[str]:
    return [str(p) for p in sorted((EXAMPLES / "food").glob("*.jpg"))]


def build(state: AppState) -> dict:
    def colorize_photo(path: str, model_name: str, seed, progress: gr.Progress | None = None) -> tuple[str, str]:
        """(gray, colorized) as files: PNG, or JPEG for photos above 4 MP (see image_work)."""
        if not path:
            raise Pix2PixError("no photo given")
        seed = seed_value(seed)
        large = [False]

        def tell(fraction: float, what: str) -> None:
            if progress is not None and large[0]:
                progress(fraction, desc=what)

        def waiting(pixels: int) -> None:
            large[0] = pixels > LARGE_PIXELS
            tell(0.0, "waiting for the large-photo lane")

        def work(picture: Image.Image) -> tuple[Image.Image, Image.Image]:
            tell(0.05, "gray version")
            gray = grayscale(picture)
            translator = state.models.translator(model_name, TASK)
            # the colorizer's last step is its "done": the page's bar still has the saving to show
            colour = translator.colorize(picture, seed=seed, progress=lambda fraction, what: tell(
                0.1 + 0.7 * fraction, what if fraction < 1 else "saving"))
            return gray, colour

        gray, result = on_upload(state, path, "colorize", work, waiting)
        tell(0.85, "saving")
        saved = state.outputs.save(gray, "gray"), state.outputs.save(result, "colorized")
        tell(1.0, "done")
        return saved

    gr.Markdown("Upload a photo (a colour photo is turned gray first, as the model only sees lightness) and "
                "get it colorized at its original resolution. The model was trained on food photos.",
                elem_classes="help")
    # the examples under the photo, in its column: on a phone (one column) the photo and the examples come first,
    # above the two results, which were empty boxes 680 px high that pushed the examples off the first screen
    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=300):
            photo = ImageUpload(label="Your photo", type="filepath", image_mode=None, sources=["upload", "clipboard"],
                                height=340, elem_id="colorize-input")
            examples = gr.Examples(example_photos(), inputs=photo, label="Gray food photos (Food-101)",
                                   elem_id="colorize-examples")
        with gr.Column(scale=2, min_width=300):
            with gr.Row():
                gray = gr.Image(label="What the model sees (gray)", type="filepath", format="png", interactive=False,
                                height=340, elem_id="colorize-gray", buttons=["download", "fullscreen"])
                result = gr.Image(label="Colorized (original size)", type="filepath", format="png",
                                  interactive=False, height=340, elem_id="colorize-output",
                                  buttons=["download", "fullscreen"])
            with gr.Row():
                names = state.models.names(TASK)
                model = Picker(names, value=state.models.default(TASK), label="Model", elem_id="colorize-model",
                               visible=len(names) > 1)  # a picker only when there is a choice
                seed = Seed(0, label="Seed", precision=0, minimum=0, maximum=SEED_MAX)
                button = gr.Button("Colorize", variant="primary", elem_id="colorize-button")
            hint = gr.Markdown(NO_MODEL_HINT, visible=not names, elem_classes="help", elem_id="colorize-no-model")

    # a photo that cannot be colorized: a warning and two empty results (as an error, Gradio left the last
    # photo's results beside the new photo, marked failed)
    run = user_errors(warn_on_error(lambda: (None, None))(colorize_photo))
    # no Gradio limit: the work waits in its lane (image_work), large photos apart from small ones
    private = dict(api_visibility="private", concurrency_limit=None)
    def run_if_photo(path, model_name, seed_value, progress=gr.Progress()):
        """Uploads, example clicks and model changes all re-run; clearing the photo does not."""
        return run(path, model_name, seed_value, progress) if path else (None, None)

    def run_clicked(path, model_name, seed_value, progress=gr.Progress()):
        return run(path, model_name, seed_value, progress)

    def run_uploaded(path, model_name, seed_value, progress=gr.Progress()):
        """An upload, as run_if_photo; one that cannot be colorized leaves the photo box empty too: a file the
        browser could not draw either stayed there as a broken-picture icon beside the warning."""
        gray_file, result_file = run_if_photo(path, model_name, seed_value, progress)
        return gray_file, result_file, gr.skip() if result_file is not None else None

    # upload and the example click, not the photo's change: dropping a photo onto one shown changed it twice,
    # and the same photo was colorized twice (a 12 MP one took two places in the large-photo lane)
    photo.upload(run_uploaded, [photo, model, seed], [gray, result, photo], show_progress_on=[gray, result],
                 **private)
    examples.load_input_event.then(run_if_photo, [photo, model, seed], [gray, result], **private)
    model.change(run_if_photo, [photo, model, seed], [gray, result], **private)
    # the picker gets a model (or loses its last one) when the tab's select rescans the folders: the hint follows
    model.change(lambda: gr.update(visible=not state.models.names(TASK)), None, hint, **private)
    button.click(run_clicked, [photo, model, seed], [gray, result], **private)

    # /colorize: any image file in, the colorized image of the same size out
    @user_errors
    def colorize_api(image: str, model: str, seed: float) -> str:
        """Colorize a photo; the result has the input's size."""
        return colorize_photo(image, model, seed)[1]

    image_endpoint(colorize_api, "colorize", "image", "colorized")
    return {"model": model}
