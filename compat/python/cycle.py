"""What the Python scenarios share: the settings the harness passes in the environment,
step reporting, and the harness's feeding protocol (see compat/harness.py)."""

from __future__ import annotations

import json
import os
import secrets
import sys
import threading
import traceback
from contextlib import contextmanager

URL = os.environ["SLUICE_COMPAT_URL"]
BEARER = os.environ["SLUICE_COMPAT_BEARER"]
CONSUMER_KEY = os.environ["SLUICE_COMPAT_CONSUMER_KEY"]
CONSUMER_SECRET = os.environ["SLUICE_COMPAT_CONSUMER_SECRET"]
AUTHOR_ID = os.environ["SLUICE_COMPAT_AUTHOR_ID"]
AUTHOR_USERNAME = os.environ["SLUICE_COMPAT_AUTHOR_USERNAME"]
WORKDIR = os.environ["SLUICE_COMPAT_WORKDIR"]

# How long a scenario waits for a fed post before the step fails.
RECEIVE_TIMEOUT = 35.0


_stdout = threading.Lock()


def say(line: str) -> None:
    """One whole line on stdout, never interleaved with another thread's."""
    with _stdout:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def event(payload: dict) -> None:
    """One `@@ {json}` event line for the harness."""
    say("@@ " + json.dumps(payload))


class Failure(Exception):
    """A check of the scenario failed; the message says what was expected."""


def check(condition: bool, message: str) -> None:
    if not condition:
        raise Failure(message)


_failed = False


@contextmanager
def step(name: str, fatal: bool = True):
    """Runs one step and reports it passed or why it failed. A failed step ends the
    scenario, unless it is not `fatal`: a check the later steps do not depend on."""
    global _failed
    say(f"--- {name}")
    try:
        yield
    except Failure as failure:
        detail = str(failure)
    except Exception as error:  # the client raised: that is the step's failure
        traceback.print_exc(file=sys.stdout)
        detail = f"{type(error).__name__}: {error}"[:500]
    else:
        event({"step": name, "ok": True})
        return
    event({"step": name, "ok": False, "detail": detail})
    _failed = True
    if fatal:
        sys.exit(1)


def finish() -> None:
    """Ends the scenario: exit status 1 when a step failed."""
    sys.exit(1 if _failed else 0)


def keyword(label: str) -> str:
    """A rule keyword no other post contains."""
    return f"compat{label}{secrets.token_hex(4)}"


def feed(phase: str, match: str, stale: list[str] | None = None) -> None:
    """Asks the harness to start ingesting this phase's posts (see compat/harness.py)."""
    event({"feed": phase, "match": match, "stale": stale or []})


def received(phase: str, post_id: str) -> None:
    """Tells the harness the matching post arrived, so it stops feeding."""
    event({"received": phase, "id": post_id})


def is_id(value) -> bool:
    """X's v2 ids are strings of decimal digits."""
    return isinstance(value, str) and value.isdigit()


def check_post(phase: str, text: str, post_id, match: str) -> None:
    """The fed matching post is `KEYWORD post ID`: text and id must agree."""
    check(is_id(post_id), f"post id {post_id!r} is not a string of digits")
    check(text == f"{match} post {post_id}",
          f"text {text!r} is not the fed post's text {match + ' post ' + str(post_id)!r}")


def check_author(author_id, users: list[tuple[str, str]]) -> None:
    """`includes.users` (as (id, username) pairs) is the compat author, and the post's
    `author_id` links to it (X documents the expansion's id in `data` even when
    `tweet.fields` does not ask for it: docs.x.com, "Expansions"). Both problems are
    reported when both occur."""
    problems = []
    if users != [(AUTHOR_ID, AUTHOR_USERNAME)]:
        problems.append(f"includes.users is {users}, expected "
                        f"[({AUTHOR_ID!r}, {AUTHOR_USERNAME!r})]")
    if author_id != AUTHOR_ID:
        problems.append(f"data.author_id is {author_id!r}, expected {AUTHOR_ID}")
    check(not problems, "; ".join(problems))


def check_nonmatching(texts: list[str], stale: list[str]) -> None:
    """No post other than the rule's own arrived before the match."""
    unrelated = [t for t in texts if t.startswith("unrelated")]
    check(not unrelated, f"a post no rule matches was delivered: {unrelated[0]!r}"
          if unrelated else "")
    for word in stale:
        from_deleted = [t for t in texts if word in t]
        check(not from_deleted,
              f"a post matching only a deleted rule was delivered: {from_deleted[:1]}")
