"""The Train tab's "Translate" section: an unpaired (CycleGAN) model translates a picture A -> B or B -> A.

Unpaired models are trained in this tab (task "Unpaired (CycleGAN)"); each is exported with both of its
generators, so one picker entry translates either way. An official CycleGAN model brought into checkpoints/
with `import-official --model cyclegan` is one generator: it is listed too and translates A -> B (the way its
name says); B -> A is refused with a line saying to import the official model named the other way round.
The image limits and lanes are the other tabs' (image_work); `/translate_unpaired` is the same
(image, model, direction) -> image for API clients.
"""

from __future__ import annotations

import gradio as gr
from PIL import Image

from pix2pix_core.errors import Pix2PixError

from .choices import Choice, Picker
from .state import AppState
from .ui import on_upload, user_errors
from .uploads import ImageUpload

TASK = "unpaired"
DIRECTIONS = [("A → B", "AtoB"), ("B → A", "BtoA")]


def build(state: AppState) -> dict:
    @user_errors
    def translate_unpaired(image: str, model: str, direction: str) -> str:
        """Translate a picture with an unpaired (CycleGAN) model, AtoB or BtoA; the result has its size."""
        if not image:
            raise Pix2PixError("no image given")
        if direction not in [value for _, value in DIRECTIONS]:
            raise Pix2PixError("direction must be AtoB or BtoA")
        if model:
            state.models.refresh()  # a model trained since the page loaded counts too

        def work(picture: Image.Image) -> Image.Image:
            return state.models.translator(model or None, TASK, direction).translate(picture)

        return state.outputs.save(on_upload(state, image, "translate_unpaired", work), "translated")

    def refresh(current: str | None):
        state.models.refresh()
        names = state.models.names(TASK)
        return gr.Dropdown(choices=names, value=current if current in names else state.models.default(TASK))

    with gr.Accordion("Translate with an unpaired (CycleGAN) model", open=False) as section:
        gr.Markdown("Models trained here on unpaired data (trainA/ and trainB/) translate either way. An official "
                    "CycleGAN model (`import-official --model cyclegan`) translates A → B only, as its name says.",
                    elem_classes="help")
        with gr.Row():
            # allow_custom_value: models trained after the page loaded; the handler checks the name
            model = Picker(state.models.names(TASK), value=state.models.default(TASK), label="Unpaired model",
                           elem_id="unpaired-model", allow_custom_value=True)
            direction = Choice(DIRECTIONS, value="AtoB", label="Direction", elem_id="unpaired-direction")
            button = gr.Button("Translate", variant="primary", elem_id="unpaired-button")
        with gr.Row():
            picture = ImageUpload(label="Picture", type="filepath", image_mode=None, sources=["upload", "clipboard"],
                                  height=300, elem_id="unpaired-input")
            result = gr.Image(label="Translated", type="filepath", format="png", interactive=False, height=300,
                              elem_id="unpaired-output", buttons=["download", "fullscreen"])
    private = dict(api_visibility="private", show_progress="hidden")
    section.expand(refresh, model, model, **private)
    # no Gradio limit: the work waits in its lane (image_work), large pictures apart from small ones
    button.click(translate_unpaired, [picture, model, direction], result, api_name="translate_unpaired",
                 concurrency_limit=None)
    return {"model": model, "refresh": refresh}
