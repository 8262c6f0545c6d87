"""Memory Gradio's queue holds for results no client reads: calls of /train_status that never read their results,
under a new session hash per `--per-session` calls (or none: `call/NAME` without one). A script, not a test:

    python -m benchmarks.unread_memory --calls 4000                    # a new session hash per call
    python -m benchmarks.unread_memory --calls 4000 --per-session 64   # 64 calls per session (its bound)
    python -m benchmarks.unread_memory --calls 4000 --no-session       # call/NAME without a session hash

The app (no models) is served in this process; the numbers are its RSS before the calls and after them once every
event has finished (/proc/self/status), and what Gradio's queue holds then for unread results: sessions, id
lists, unread event ids, messages and their size in kB (`deep_size`; RSS is not given back when they go). Most
of the RSS growth under new session hashes is Gradio's per-session state (~240 kB each), bounded apart:
demo/app.py's MAX_SESSIONS.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import socket
import sys
import tempfile
import time
from pathlib import Path

import pydantic


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def held(queue) -> dict:
    """What the queue holds for unread results."""
    messages = queue.pending_messages_per_session
    return {"sessions": len(messages), "id_lists": len(queue.pending_event_ids_session),
            "unread_ids": sum(map(len, queue.pending_event_ids_session.values())),
            "messages": sum(q.qsize() for q in messages.values()),
            "kb": round(deep_size([messages, queue.pending_event_ids_session]) / 1000)}


def deep_size(root) -> int:
    """Bytes of `root` and what it holds: containers, strings, numbers, pydantic messages (their fields) and
    asyncio queues (their items only: not the event loop they name)."""
    seen, stack, total = set(), [root], 0
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        total += sys.getsizeof(item)
        if isinstance(item, dict):
            stack += [*item.keys(), *item.values()]
        elif isinstance(item, (list, tuple, set, frozenset, collections.deque)):
            stack += list(item)
        elif isinstance(item, asyncio.Queue):
            stack.append(item._queue)
        elif isinstance(item, pydantic.BaseModel):
            stack.append(item.__dict__)
    return total


def main() -> None:
    import httpx

    from demo.app import build_app, launch_options, queue_options

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=4000)
    parser.add_argument("--per-session", type=int, default=1, help="calls per session hash (the app allows 64)")
    parser.add_argument("--no-session", action="store_true", help="call/train_status without a session hash")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="unread-memory-"))
    (folder / "checkpoints").mkdir()
    blocks = build_app(folder / "checkpoints", folder / "data", folder / "runs", device="cpu")
    blocks.queue(**queue_options())
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    blocks.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                  **launch_options(blocks.app_state))
    base = f"http://127.0.0.1:{port}/gradio_api"
    queue = blocks._queue
    try:
        with httpx.Client(timeout=30) as http:
            http.post(f"{base}/call/train_status", json={"data": []})  # one call first: imports, caches warmed
            time.sleep(1)
            gc.collect()
            before, started = rss_mb(), time.perf_counter()
            codes: dict[int, int] = {}
            for index in range(args.calls):
                session = {} if args.no_session else {"session_hash": f"s{index // args.per_session}"}
                code = http.post(f"{base}/call/train_status", json={"data": [], **session}).status_code
                codes[code] = codes.get(code, 0) + 1
            while queue.event_ids_to_events:  # every event finished: only unread results are left
                time.sleep(0.1)
            gc.collect()
            after = rss_mb()
        print(f"{args.calls} calls ({'no session hash' if args.no_session else f'{args.per_session} per session'}) "
              f"in {time.perf_counter() - started:.0f} s, answers {codes}")
        print(f"RSS {before:.0f} MB -> {after:.0f} MB (+{after - before:.1f} MB); held: {held(queue)}")
    finally:
        blocks.close()


if __name__ == "__main__":
    main()
