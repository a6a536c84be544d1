"""twarc's library (`Twarc2`) through the whole filtered-stream cycle against sluice, with
its app-auth flow: consumer key and secret traded for a bearer token at /oauth2/token.

twarc hard-codes https://api.twitter.com; the only change here is the environment the
harness sets: HTTPS_PROXY (sluice serve --intercept) and REQUESTS_CA_BUNDLE (its CA)."""

from __future__ import annotations

import logging
import queue
import sys
import threading
import time

from twarc import Twarc2

from cycle import (BEARER, check_author, CONSUMER_KEY, CONSUMER_SECRET,
                   RECEIVE_TIMEOUT, check, check_nonmatching, check_post, feed, is_id,
                   keyword, received, step, finish)

logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                    format="%(asctime)s %(name)s %(levelname)s %(message)s")


class Stream:
    """`Twarc2.stream()` (every expansion and field, twarc's default) read on a thread
    into a queue; stopped the way twarc documents, with its `event`."""

    def __init__(self, twarc: Twarc2, match: str):
        self.match = match
        self.items: queue.Queue = queue.Queue()
        self.stop = threading.Event()
        self.problem: str | None = None
        self.thread = threading.Thread(target=self._read, args=(twarc,), daemon=True)
        self.thread.start()

    def _read(self, twarc: Twarc2) -> None:
        try:
            for item in twarc.stream(event=self.stop):
                self.items.put(item)
                if self.match in item.get("data", {}).get("text", ""):
                    self.stop.set()
        except Exception as error:
            self.problem = f"{type(error).__name__}: {error}"

    def wait_for_match(self):
        """The first stream object whose post has the keyword, and the texts before it."""
        texts = []
        deadline = time.monotonic() + RECEIVE_TIMEOUT
        while True:
            remaining = deadline - time.monotonic()
            check(self.problem is None, f"the stream failed: {self.problem}")
            check(remaining > 0, f"no post containing {self.match!r} within "
                  f"{RECEIVE_TIMEOUT:.0f} s")
            try:
                item = self.items.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                continue
            data = item.get("data")
            check(isinstance(data, dict), f"a stream object without data: {item}")
            texts.append(data.get("text", ""))
            if self.match in data.get("text", ""):
                return item, texts


def add_rule(twarc: Twarc2, value: str, tag: str) -> str:
    answer = twarc.add_stream_rules([{"value": value, "tag": tag}])
    check("errors" not in answer, f"errors in the add answer: {answer}")
    data = answer.get("data")
    check(isinstance(data, list) and len(data) == 1, f"the add answer is {answer}")
    check(is_id(data[0].get("id")), f"rule id {data[0].get('id')!r} is not a string of digits")
    check(data[0].get("value") == value, f"rule value {data[0].get('value')!r}")
    check(answer.get("meta", {}).get("summary", {}).get("created") == 1,
          f"meta.summary of the add answer is not created 1: {answer}")
    return data[0]["id"]


def check_matching(phase: str, item: dict, match: str, rule_id: str, tag: str) -> None:
    data = item["data"]
    check_post(phase, data.get("text"), data.get("id"), match)
    rules = item.get("matching_rules")
    check(rules == [{"id": rule_id, "tag": tag}],
          f"matching_rules {rules}, expected only id {rule_id} tag {tag!r}")


def main() -> None:
    word_a, tag_a = keyword("a"), "compat-tag-a"
    word_b, tag_b = keyword("b"), "compat-tag-b"

    with step("oauth2-token"):
        twarc = Twarc2(consumer_key=CONSUMER_KEY, consumer_secret=CONSUMER_SECRET)
        token = twarc.client.token
        check(token.get("token_type", "").lower() == "bearer", f"token {token}")
        check(token.get("access_token") == BEARER,
              "/oauth2/token gave another token than the app's bearer token")

    with step("add-rules"):
        rule_a = add_rule(twarc, word_a, tag_a)

    with step("list-rules"):
        listed = twarc.get_stream_rules().get("data", [])
        check([(r.get("id"), r.get("value"), r.get("tag")) for r in listed]
              == [(rule_a, word_a, tag_a)], f"the rule list is {listed}")

    with step("connect-stream"):
        stream = Stream(twarc, word_a)
        feed("first", word_a)

    with step("receive-match"):
        item, texts = stream.wait_for_match()
        received("first", item["data"].get("id"))
        check_matching("first", item, word_a, rule_a, tag_a)
        check("__twarc" in item, "twarc did not add its __twarc metadata")

    with step("expansions", fatal=False):
        users = item.get("includes", {}).get("users", [])
        check_author(item["data"].get("author_id"),
                     [(u.get("id"), u.get("username")) for u in users])

    with step("no-nonmatching", fatal=False):
        check_nonmatching(texts, [])

    stream.thread.join(15)

    with step("delete-rules"):
        check(not stream.thread.is_alive(), "the stream did not stop after its event was set")
        answer = twarc.delete_stream_rule_ids([rule_a])
        check(answer.get("meta", {}).get("summary", {}).get("deleted") == 1,
              f"the delete answer is {answer}")
        left = twarc.get_stream_rules()
        check("data" not in left, f"rules left after the delete: {left}")

    with step("reconnect"):
        rule_b = add_rule(twarc, word_b, tag_b)
        stream = Stream(twarc, word_b)
        feed("second", word_b, stale=[word_a])
        item, texts = stream.wait_for_match()
        received("second", item["data"].get("id"))
        check_matching("second", item, word_b, rule_b, tag_b)
        check_nonmatching(texts, [word_a])
        stream.thread.join(15)
        twarc.delete_stream_rule_ids([rule_b])


if __name__ == "__main__":
    main()
    finish()
