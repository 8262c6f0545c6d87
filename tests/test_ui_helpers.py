"""demo/ui.py's helpers for the tabs' handlers."""

from __future__ import annotations

import pytest

gr = pytest.importorskip("gradio")


def test_a_handlers_user_error_is_a_warning_and_fresh_results_each_call(monkeypatch):
    """The Colorize tab's unusable photo and the Facades tab's unusable upload: one warning, the outputs the tab
    asks for (made at each call: a gr.skip() is an object, not to be shared between events); no gr.Error."""
    from demo import ui
    from pix2pix_core.errors import Pix2PixError

    warned = []
    monkeypatch.setattr(ui.gr, "Warning", warned.append)

    @ui.warn_on_error(lambda: (gr.skip(), gr.skip()))
    def handler(path):
        """The handler's own doc."""
        if path == "bad":
            raise Pix2PixError("<b>bad</b> photo: /srv/app/uploads/p.png")
        return path, path

    assert handler("good") == ("good", "good") and warned == []
    first, second = handler("bad"), handler("bad")
    assert first[0] is not second[0] and first[0] is not first[1]
    assert warned == [ui.as_text("<b>bad</b> photo: /srv/app/uploads/p.png")] * 2
    assert "&lt;b&gt;" in warned[0] and "/srv/app" not in warned[0]  # the page's toast renders HTML
    assert handler.__doc__ == "The handler's own doc."
