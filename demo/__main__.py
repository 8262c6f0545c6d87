"""`python -m demo`: serve Pix2Pix Studio (the same as `pix2pix-studio` and `python app.py`)."""

from .server import main

if __name__ == "__main__":
    main()
