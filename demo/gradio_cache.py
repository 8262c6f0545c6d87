"""Gradio's cache, kept from growing with the number of requests.

Gradio keeps every upload and every result as `<cache>/<content hash>/<name>`, and its `delete_cache`
(app.DELETE_CACHE: files older than an hour) deleted the files but left two things behind for good:

- their folders: one or two empty folders per request (an upload's, a result's), an inode and a 4 kB block each
  on ext4; a shared app answering ten requests a second would leave 2 million folders and 8 GB a day, unseen by the
  disk checks (free bytes), and they stay across restarts;
- the path of every upload in memory: an upload is listed twice (the upload route's list and its input
  component's), and once deleted through the first, the second kept its path forever (a missing file is skipped,
  not forgotten) and looked at it again at every pass, every 10 minutes.

`tidy_deletion` makes Gradio's deletion remove both: a deleted file's path from every list, its folder once empty.
It also hands Gradio copies of the lists to walk: a file cached while it walked one ended its schedule for good.
`remove_empty_folders` removes, at the app's start, the empty folders that app versions before it left.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import time
from pathlib import Path

# the folder Gradio keeps a cached file in: the sha256 of its content, in hex (route_utils, processing_utils)
CACHED_FILE_FOLDER = re.compile(r"[0-9a-f]{64}")


def tidy_deletion() -> None:
    """Wrap Gradio's deletion of old cache files (on its schedule, and at a clean stop): a file it deleted is
    forgotten by every list that held it, and its folder removed when empty; never the cache folder itself.
    Idempotent."""
    from gradio import route_utils
    from gradio.utils import get_upload_folder

    delete = route_utils.delete_files_created_by_app
    if getattr(delete, "tidies", False):
        return

    @functools.wraps(delete)
    def delete_and_tidy(blocks, age):
        lists = blocks.temp_file_sets
        before = [set(files) for files in lists]
        # Gradio walks copies: it walked each list itself, in a worker thread, and a file a request cached
        # meanwhile raised "Set changed size during iteration", which ended its schedule for good
        walked = [set(files) for files in before]
        blocks.temp_file_sets = walked
        try:
            delete(blocks, age)
        finally:
            blocks.temp_file_sets = lists
        # Gradio drops a file from the list it deleted it by; one cached again since (same content) is kept
        dropped = set().union(*(old - files for old, files in zip(before, walked)))
        deleted = {file for file in dropped if not os.path.lexists(file)}
        for files in lists:
            files -= deleted  # the other lists that named it (a file yet to arrive is in none of these)
        root = Path(get_upload_folder()).resolve()
        for folder in {Path(file).parent for file in deleted}:
            with contextlib.suppress(OSError):
                if folder.resolve() != root:
                    folder.rmdir()  # only when empty: another file may have been cached there since

    delete_and_tidy.tidies = True
    route_utils.delete_files_created_by_app = delete_and_tidy


def remove_empty_folders(root: Path, older_than: float) -> int:
    """Remove the empty folders Gradio makes for a cached file in its cache folder `root` (`<root>/<the file's
    sha256>/`; no other folder, at no other depth: `root` may be a shared one, GRADIO_TEMP_DIR=/tmp say, whose
    other empty folders are not the app's) unchanged for `older_than` seconds: app versions before
    `tidy_deletion` left one or two per request, for good, and this app does not know them. A fresh one may be a
    request's, about to get its file. Never through a link. Returns how many."""
    cutoff, removed = time.time() - older_than, 0
    with contextlib.suppress(OSError), os.scandir(root) as entries:  # a cache of millions: one entry at a time
        for entry in entries:
            with contextlib.suppress(OSError):
                if (CACHED_FILE_FOLDER.fullmatch(entry.name) and entry.is_dir(follow_symlinks=False)
                        and entry.stat(follow_symlinks=False).st_mtime < cutoff):
                    os.rmdir(entry.path)  # only when empty
                    removed += 1
    return removed
