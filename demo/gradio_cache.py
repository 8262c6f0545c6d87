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
import time
from pathlib import Path


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
    """Remove the empty folders under Gradio's cache folder `root` (never `root` itself, never through a link)
    unchanged for `older_than` seconds: app versions before `tidy_deletion` left one or two per request, for good,
    and this app does not know them. A fresh one may be a request's, about to get its file. Returns how many."""
    root, cutoff = Path(root), time.time() - older_than
    found = []  # with their times before any removal: removing a folder's only sub-folder changes its time
    for folder, _, _ in os.walk(root):  # a link to a folder is listed, never entered (followlinks=False)
        with contextlib.suppress(OSError):
            found.append((Path(folder), os.lstat(folder).st_mtime))
    removed = 0
    for folder, changed in reversed(found[1:]):  # the deepest first; found[0] is the root
        with contextlib.suppress(OSError):
            if changed < cutoff:
                folder.rmdir()  # only when empty
                removed += 1
    return removed
