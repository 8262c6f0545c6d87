"""Results no client has read, held by Gradio's queue for all sessions together: a bounded number, oldest dropped.

Gradio keeps every event's messages until its session's stream reads them (`pending_messages_per_session`, for
its latest 2,000 sessions) and the ids of a session's events until then (`pending_event_ids_session`: a session's
list stays, empty once read, and so do the lists of the sessions whose messages it forgot). `RouteChecks` holds
one session to MAX_UNREAD events; a client using a new session hash per call (or none, with `call/NAME`) passed
that by construction: 2,000 sessions x 64 results of ~2.4 kB (an idle /train_status: three messages) is ~300 MB,
and each call left ~300 B of ids for good. Before each join or call, `drop_oldest_unread` keeps the total at
MAX_UNREAD_HELD. A page reads its results as they come, so only a client that never reads (or one gone) loses
any; what it asks for later is "session not found", as for a session Gradio forgot.
"""

from __future__ import annotations

from collections import Counter

MAX_UNREAD_HELD = 1000  # events of all sessions whose results were not read yet (~2.4 MB of /train_status)


def drop_oldest_unread(queue, keep: int, reading: Counter) -> None:
    """Forget sessions, least recently used first, until Gradio holds at most `keep` unread events; also the id
    lists of sessions whose messages Gradio already forgot. Never a session whose stream is open (`reading`: its
    stream reads the list after each message) or one with an event waiting or running (it will be read)."""
    messages = getattr(queue, "pending_messages_per_session", None)
    ids = getattr(queue, "pending_event_ids_session", None)
    events = getattr(queue, "event_ids_to_events", None)
    if not (isinstance(messages, dict) and isinstance(ids, dict) and isinstance(events, dict)):
        return  # a Gradio that renamed these leaves the bound off (tests/test_app_limits.py says so)
    for session in [session for session in ids if session not in messages and not reading[session]]:
        del ids[session]  # its messages are gone: nothing can read these any more
    held = sum(map(len, ids.values()))
    for session in list(messages):  # least recently used first
        if held <= keep:
            return
        unread = ids.get(session, ())
        if not unread or reading[session] or any(event_id in events for event_id in unread):
            continue
        del messages[session]
        ids.pop(session, None)
        held -= len(unread)


def mark_used(queue, session) -> None:
    """A join moves its session to the end of Gradio's least-recently-used order (Gradio orders them by their
    first event), so a page in use is the last to lose anything."""
    messages = getattr(queue, "pending_messages_per_session", None)
    if hasattr(messages, "move_to_end") and isinstance(session, str) and session in messages:
        messages.move_to_end(session)
