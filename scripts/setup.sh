#!/usr/bin/env bash
# Set up Pix2Pix Studio on a fresh machine: a virtual environment in .venv with the pinned packages.
#   bash scripts/setup.sh          # runtime (library, CLI, app)
#   bash scripts/setup.sh --test   # plus pytest, Playwright and Debian's chromium for the browser tests
set -euo pipefail
cd "$(dirname "$0")/.."
if ! python3 -c "import ensurepip, venv" 2>/dev/null; then
  # Debian and Ubuntu ship venv's pip bootstrap separately
  if command -v apt-get >/dev/null && [[ $(id -u) -eq 0 ]]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
  else
    echo "error: python3 cannot create virtual environments here; install them first (Debian/Ubuntu:" \
         "sudo apt-get install python3-venv) and run this again" >&2
    exit 1
  fi
fi
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -r requirements.txt
# the `pix2pix` and `pix2pix-studio` commands (editable: the app finds checkpoints/ here); optional
.venv/bin/python -m pip install --quiet --no-deps -e . >/dev/null 2>&1 \
  || echo "note: .venv/bin/pix2pix was not installed; use .venv/bin/python -m pix2pix_core" >&2
if [[ "${1:-}" == "--test" ]]; then
  .venv/bin/python -m pip install --quiet -r requirements-test.txt
  if [[ ! -x /usr/bin/chromium ]]; then
    # Browser tests drive Debian's chromium; Playwright's own browser download is never used.
    if command -v apt-get >/dev/null && [[ $(id -u) -eq 0 ]]; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
      echo "note: /usr/bin/chromium is missing (sudo apt-get install chromium); browser tests will be skipped" >&2
    fi
  fi
fi
