"""Radio buttons, dropdowns and seed boxes whose refusal of a bad value is short and says why.

Gradio checks that a Radio's or Dropdown's value is one of its choices, and its error quotes the value
whole: a megabyte string sent through the API (or to any event, by its fn_index) came back as a megabyte
error message. These components look and behave the same in the page (`is_template` keeps Gradio's own
frontend component), but refuse a value that is not a choice with a message that quotes at most
MAX_QUOTED characters of it (HTML-escaped for the page, whose toast renders HTML). A dropdown with
`allow_custom_value=True` passes any string to its handler, which checks it itself. A list or an object sent for
one value is refused by name: Gradio's Radio quoted a list of valid choices whole (["AtoB"] x 5,000: a 40 kB
error), and its single-valued Dropdown handed one to the handler. A `Seed` box refuses what is not a whole number
from 0 to SEED_MAX by name: Gradio's own Number with a minimum and a precision failed on "abc" or NaN inside its
comparison, an empty "Error".
"""

from __future__ import annotations

import gradio as gr

from pix2pix_core.errors import Pix2PixError
from pix2pix_core.limits import seed_value

from .messages import quoted
from .ui import as_text


def _refuse_many(component, payload) -> None:
    """One value, not a list or an object: a Radio's own check quoted a list of valid choices whole, and a
    single-valued Dropdown handed it on (a model name as a list was an internal TypeError in the handler)."""
    if isinstance(payload, (list, dict)) and not getattr(component, "multiselect", False):
        raise gr.Error(as_text(f"{quoted(component.label or 'value', 40)}: one value expected, got a "
                               f"{type(payload).__name__} of {len(payload)}"), print_exception=False)


def _refuse_unknown(component, payload) -> None:
    choices = [value for _, value in component.choices]
    for value in payload if isinstance(payload, list) else [payload]:
        if value not in choices:
            shown = ", ".join(quoted(choice, 40) for choice in choices[:10])
            raise gr.Error(as_text(f"{quoted(component.label or 'value', 40)}: {quoted(value)} is not one of "
                                   f"the choices ({shown})"), print_exception=False)


class Choice(gr.Radio):
    """gr.Radio with a short error for a value that is not a choice."""

    is_template = True  # rendered by Gradio's Radio component

    def preprocess(self, payload):
        if payload is not None:
            _refuse_many(self, payload)
            _refuse_unknown(self, payload)
        return super().preprocess(payload)


class Picker(gr.Dropdown):
    """gr.Dropdown with a short error for a value that is not a choice (unless custom values are allowed)."""

    is_template = True  # rendered by Gradio's Dropdown component

    def preprocess(self, payload):
        if payload is not None:
            _refuse_many(self, payload)
        if payload is not None and not self.allow_custom_value:
            _refuse_unknown(self, payload)
        return super().preprocess(payload)


class Seed(gr.Number):
    """gr.Number for a random seed (0 to SEED_MAX): the value is checked by `limits.seed_value`, the same check
    as the API's, and handed on as an int."""

    is_template = True  # rendered by Gradio's Number component

    def preprocess(self, payload):
        try:
            return seed_value(payload)
        except Pix2PixError as exc:
            raise gr.Error(as_text(str(exc)), print_exception=False) from None
