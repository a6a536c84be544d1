"""tweepy's StreamingClient through the whole filtered-stream cycle against sluice.

tweepy hard-codes https://api.twitter.com; the only change here is the environment the
harness sets: HTTPS_PROXY (sluice serve --intercept) and REQUESTS_CA_BUNDLE (its CA)."""

from __future__ import annotations

import logging
import queue
import sys
import threading
import time

import tweepy

from cycle import (BEARER, check_author, RECEIVE_TIMEOUT, check,
                   check_nonmatching, check_post, feed, is_id, keyword, received, say,
                   step, finish)

logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                    format="%(asctime)s %(name)s %(levelname)s %(message)s")


class Collector(tweepy.StreamingClient):
    """Queues every stream response; disconnects once the awaited keyword arrives."""

    def __init__(self):
        super().__init__(BEARER, daemon=True)
        self.match = ""
        self.responses: queue.Queue = queue.Queue()
        self.connected = threading.Event()
        self.problem: str | None = None

    def on_connect(self):
        self.connected.set()

    def on_response(self, response):
        self.responses.put(response)
        if response.data is not None and self.match in response.data.text:
            self.disconnect()

    def on_request_error(self, status_code):
        self.problem = f"the stream answered HTTP {status_code}"
        self.disconnect()

    def on_connection_error(self):
        self.problem = "connection error or timeout"
        self.disconnect()

    def on_exception(self, exception):
        self.problem = f"{type(exception).__name__}: {exception}"


def connect(stream: Collector, match: str) -> threading.Thread:
    stream.match = match
    stream.connected.clear()
    stream.problem = None
    thread = stream.filter(expansions="author_id", user_fields="username", threaded=True)
    deadline = time.monotonic() + 15
    while not stream.connected.wait(0.1):
        check(stream.problem is None, stream.problem or "")
        check(thread.is_alive(), f"the stream ended before connecting: {stream.problem}")
        check(time.monotonic() < deadline, "not connected within 15 s")
    return thread


def wait_for_match(stream: Collector, match: str):
    """The first response whose post has the keyword, and the texts of all posts before it."""
    texts = []
    deadline = time.monotonic() + RECEIVE_TIMEOUT
    while True:
        remaining = deadline - time.monotonic()
        check(remaining > 0, f"no post containing {match!r} within {RECEIVE_TIMEOUT:.0f} s"
              + (f" ({stream.problem})" if stream.problem else ""))
        try:
            response = stream.responses.get(timeout=min(remaining, 0.5))
        except queue.Empty:
            continue
        if response.errors:
            say(f"stream errors: {response.errors}")
        if response.data is None:
            continue
        texts.append(response.data.text)
        if match in response.data.text:
            return response, texts


def add_rule(client: tweepy.StreamingClient, value: str, tag: str) -> tweepy.StreamRule:
    response = client.add_rules(tweepy.StreamRule(value, tag=tag))
    check(not response.errors, f"errors in the add answer: {response.errors}")
    check(isinstance(response.data, list) and len(response.data) == 1,
          f"the add answer's data is {response.data!r}, not one rule")
    rule = response.data[0]
    check(is_id(rule.id), f"rule id {rule.id!r} is not a string of digits")
    check(rule.value == value, f"rule value {rule.value!r}, expected {value!r}")
    check(rule.tag in (None, tag), f"rule tag {rule.tag!r}, expected {tag!r}")
    summary = response.meta.get("summary", {})
    check(summary.get("created") == 1, f"meta.summary is {summary!r}, not created 1")
    return rule


def check_matching_post(phase: str, response, match: str, rule: tweepy.StreamRule,
                        tag: str) -> None:
    tweet = response.data
    check_post(phase, tweet.text, tweet.data.get("id"), match)
    check(tweet.id == int(tweet.data["id"]), f"Tweet.id {tweet.id} is not data.id")
    rules = response.matching_rules
    check([(r.id, r.tag) for r in rules] == [(rule.id, tag)],
          f"matching_rules {rules}, expected only id {rule.id} tag {tag!r}")


def main() -> None:
    rules_client = tweepy.StreamingClient(BEARER)
    stream = Collector()
    word_a, tag_a = keyword("a"), "compat-tag-a"
    word_b, tag_b = keyword("b"), "compat-tag-b"

    with step("add-rules"):
        rule_a = add_rule(rules_client, word_a, tag_a)

    with step("list-rules"):
        listed = rules_client.get_rules().data or []
        check([(r.id, r.value, r.tag) for r in listed] == [(rule_a.id, word_a, tag_a)],
              f"the rule list is {listed}, expected only {rule_a.id} {word_a!r} {tag_a!r}")

    with step("connect-stream"):
        thread = connect(stream, word_a)
        feed("first", word_a)

    with step("receive-match"):
        response, texts = wait_for_match(stream, word_a)
        received("first", response.data.data.get("id"))
        check_matching_post("first", response, word_a, rule_a, tag_a)

    with step("expansions", fatal=False):
        author_id = response.data.author_id
        check_author(None if author_id is None else str(author_id),
                     [(str(u.id), u.username) for u in response.includes.get("users", [])])

    with step("no-nonmatching", fatal=False):
        check_nonmatching(texts, [])

    thread.join(15)

    with step("delete-rules"):
        check(not thread.is_alive(), "the stream did not stop after disconnect()")
        deleted = rules_client.delete_rules(rule_a.id)
        summary = deleted.meta.get("summary", {})
        check(summary.get("deleted") == 1, f"meta.summary is {summary!r}, not deleted 1")
        left = rules_client.get_rules().data
        check(not left, f"rules left after the delete: {left}")

    with step("reconnect"):
        rule_b = add_rule(rules_client, word_b, tag_b)
        thread = connect(stream, word_b)
        feed("second", word_b, stale=[word_a])
        response, texts = wait_for_match(stream, word_b)
        received("second", response.data.data.get("id"))
        check_matching_post("second", response, word_b, rule_b, tag_b)
        check_nonmatching(texts, [word_a])
        thread.join(15)
        rules_client.delete_rules(rule_b.id)


if __name__ == "__main__":
    main()
    finish()
