"""The Train tab's "Translate" section: a model trained on your own data translates a picture.

The Facades and Colorize tabs use the models of their tasks; the models of the other tasks had nowhere to go:
a custom pix2pix model (task "Custom: A|B images" or "Custom: A/ and B/ folders") translates a picture the way
it was trained (its input side to the other), an unpaired (CycleGAN) model A -> B or B -> A. Models trained here
on unpaired data are exported with both of their generators, so one picker entry translates either way. An
official CycleGAN model brought into checkpoints/ with `import-official --model cyclegan` is one generator: it
is listed too and translates A -> B (the way its name says); B -> A is refused with a line saying to import it
with the official model named the other way round (`--reverse`), which makes a file with both generators that
translates either way, as the ones trained here.

The image limits and lanes are the other tabs' (image_work). `/translate` is the same (image, model,
direction) -> image for API clients (the direction is a CycleGAN's only); `/translate_unpaired`, its name
before custom pix2pix models came here, still takes unpaired models.
"""

from __future__ import annotations

import gradio as gr
from PIL import Image

from pix2pix_core.checkpoint import held_generators
from pix2pix_core.errors import Pix2PixError

from .choices import Choice, Picker
from .messages import TypedTextError, quoted
from .state import AppState
from .ui import on_upload, user_errors, warn_on_error
from .uploads import ImageUpload

OWN_TASKS = ("aligned", "paired", "unpaired")  # the tasks whose models no other tab uses
UNPAIRED = "unpaired"
DIRECTIONS = [("A → B", "AtoB"), ("B → A", "BtoA")]
NO_MODEL_HINT = ("**No model of your own yet.** Train one above: choose the task *Custom* (your own picture pairs) "
                 "or *Unpaired (CycleGAN)*, then Start training. When the run ends or is stopped, its model is "
                 "listed here.")


def models_of(state: AppState, tasks: tuple[str, ...]) -> list[str]:
    """The names of the models of `tasks`, in the registry's order."""
    return [name for task in tasks for name in state.models.names(task)]


def build(state: AppState) -> dict:

    def task_of(model: str) -> str:
        """The task of a model this section translates with; any other is refused by name."""
        task = state.models.info(model).task
        if task not in OWN_TASKS:
            raise TypedTextError(f"model {quoted(model)} is a model of the {task} task: use it in its own tab", model)
        return task

    def chosen_model(model: str | None, direction: str, tasks: tuple[str, ...]) -> tuple[str, str]:
        """(name, task) of the model to translate with: `model`, or the first of `tasks` when empty or None."""
        if (model and model not in state.models.names_of_all()) or not (model or models_of(state, tasks)):
            state.models.refresh()  # a model trained or added since: rescanned then only (0.14 ms a model)
        model = model or next(iter(models_of(state, tasks)), "")
        if not model:
            raise Pix2PixError("no model trained on your own data yet: train one above (a custom or unpaired task)")
        task = task_of(model)
        if task not in tasks:
            raise TypedTextError(f"model {quoted(model)} is a model of the {task} task, not of the unpaired (CycleGAN) "
                                 "task; the translate endpoint takes it", model)  # a name sent: the default fits
        if task != UNPAIRED and direction != "AtoB":
            raise Pix2PixError(f"model {quoted(model)} is a pix2pix model: it translates one way, the way it was "
                               "trained; the direction (B → A) is a CycleGAN's choice")
        return model, task

    def translate_with(image: str, model: str | None, direction: str, tasks: tuple[str, ...]) -> str:
        if not image:
            raise Pix2PixError("no image given")
        if direction not in [value for _, value in DIRECTIONS]:
            raise Pix2PixError("direction must be AtoB or BtoA")

        def work(picture: Image.Image) -> Image.Image:  # after the picture's checks, as the other tabs
            name, task = chosen_model(model, direction, tasks)
            return state.models.translator(name, task, direction).translate(picture)

        return state.outputs.save(on_upload(state, image, "translate", work), "translated")

    # model=None: an API client may leave it out ("" and None are the first model), as /facade's; Gradio makes an
    # input optional only from the picker's value, which is None when the app starts without models of your own
    @user_errors
    def translate(image: str, model: str | None = None, direction: str = "AtoB") -> str:
        """Translate a picture with a model trained on your own data: a custom pix2pix model its own way, an
        unpaired (CycleGAN) model AtoB or BtoA; the result has the picture's size."""
        return translate_with(image, model, direction, OWN_TASKS)

    @user_errors
    @warn_on_error(lambda: None)
    def translate_on_page(image: str, model: str | None = None, direction: str = "AtoB") -> str | None:
        """The page's Translate: no picture, no model or one that cannot be used is a warning and an empty result
        (ui.warn_on_error). As an error (the API's), Gradio also put a red "Error" badge in the result box."""
        return translate_with(image, model, direction, OWN_TASKS)

    @user_errors
    def translate_unpaired(image: str, model: str | None = None, direction: str = "AtoB") -> str:
        """Translate a picture with an unpaired (CycleGAN) model, AtoB or BtoA (/translate takes any own model)."""
        return translate_with(image, model, direction, (UNPAIRED,))

    def refresh(current: str | None):
        state.models.refresh()
        names = models_of(state, OWN_TASKS)
        value = current if current in names else (names[0] if names else None)
        return gr.Dropdown(choices=names, value=value)

    def is_unpaired(name: str | None) -> bool:
        try:
            return bool(name) and state.models.info(name).task == UNPAIRED
        except Pix2PixError:  # a name typed or gone: the handler says so on Translate
            return True

    def held_direction(name: str | None) -> str | None:
        """The one direction a CycleGAN file holds (an export of one generator, an official import), else None:
        the picker then shows it, where the page's A -> B failed on the first Translate with such a file."""
        try:
            held = held_generators(state.models.info(name).path)
        except Pix2PixError:  # a name typed or gone, a file removed: the handler says so on Translate
            return None
        return held[0] if len(held) == 1 else None

    def on_model(name: str | None):
        """The direction is a CycleGAN's choice: a pix2pix model has one generator, its input side to the other."""
        if not is_unpaired(name):
            return gr.update(visible=False, value="AtoB")
        held = held_direction(name)
        return gr.update(visible=True, value=held) if held else gr.update(visible=True)

    names = models_of(state, OWN_TASKS)
    first = names[0] if names else None
    with gr.Accordion("Translate with a model trained on your own data", open=False) as section:
        gr.Markdown("A model trained on your own picture pairs turns a picture into the other side, the way it "
                    "was trained; an unpaired (CycleGAN) model works either way: pick the direction. Model "
                    "files put in the app's checkpoints/ folder are listed too (the README says how to bring one "
                    "in).", elem_classes="help", elem_id="translate-help")
        # shown while there is no model to pick: the empty picker alone said nothing until Translate was pressed
        hint = gr.Markdown(NO_MODEL_HINT, visible=not names, elem_id="translate-no-model")
        with gr.Row():
            # allow_custom_value: models trained after the page loaded; the handler checks the name
            model = Picker(names, value=first, label="Model", elem_id="translate-model", allow_custom_value=True,
                           min_width=240)
            direction = Choice(DIRECTIONS, value=(is_unpaired(first) and held_direction(first)) or "AtoB",
                               label="Direction (CycleGAN)", elem_id="translate-direction", visible=is_unpaired(first))
            button = gr.Button("Translate", variant="primary", elem_id="translate-button")
        with gr.Row():
            picture = ImageUpload(label="Picture", type="filepath", image_mode=None, sources=["upload", "clipboard"],
                                  height=300, elem_id="translate-input")
            result = gr.Image(label="Translated", type="filepath", format="png", interactive=False, height=300,
                              elem_id="translate-output", buttons=["download", "fullscreen"])
        with gr.Row(visible=False):  # /translate for API clients (their errors stay errors), and its name of before
            api_button = gr.Button()
            unpaired_button = gr.Button()
    private = dict(api_visibility="private", show_progress="hidden")
    section.expand(refresh, model, model, **private)
    model.focus(refresh, model, model, **private)  # a model whose run ended while the section was open
    model.change(on_model, model, direction, **private)
    # the picker gets a model (or loses its last one) by refresh, which sets its value: the hint follows
    model.change(lambda: gr.update(visible=not models_of(state, OWN_TASKS)), None, hint, **private)
    # no Gradio limit: the work waits in its lane (image_work), large pictures apart from small ones
    button.click(translate_on_page, [picture, model, direction], result, api_visibility="private",
                 concurrency_limit=None)
    api_button.click(translate, [picture, model, direction], result, api_name="translate", concurrency_limit=None)
    unpaired_button.click(translate_unpaired, [picture, model, direction], result, api_name="translate_unpaired",
                          concurrency_limit=None)
    return {"model": model, "refresh": refresh}
