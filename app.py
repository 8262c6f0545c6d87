"""Pix2Pix Studio web app: `python app.py` serves it on http://127.0.0.1:7860.

A thin wrapper kept for a fresh clone: the command line is `demo.server` (installed as `pix2pix-studio`,
also `python -m demo`), the UI is in `demo/`, the models in `pix2pix_core`.
"""

from demo.server import main

if __name__ == "__main__":
    main()
