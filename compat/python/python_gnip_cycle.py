"""python-gnip (PyPI `python-gnip`) against sluice: PowerTrack rules and stream, then the
Usage API through its `get_metrics`.

python-gnip keeps its hosts in class attributes (`Gnip.api_host`, `Gnip.stream_host`) and
takes `use_ssl=False` for plain HTTP: the only changes here are those two attributes, set
to sluice's address, as a user of the library would set them."""

from __future__ import annotations

import json
import os
import queue
import threading
from urllib.parse import urlsplit

from gnip import Gnip

from cycle import (RECEIVE_TIMEOUT, URL, check, check_nonmatching, feed, keyword,
                   received, say, step, finish)

USER = os.environ["SLUICE_COMPAT_USER"]
PASSWORD = os.environ["SLUICE_COMPAT_PASSWORD"]
ACCOUNT = "compat"

Gnip.api_host = Gnip.stream_host = urlsplit(URL).netloc
client = Gnip(ACCOUNT, login=USER, password=PASSWORD, source="twitter", use_ssl=False)
match = keyword("gnip")


def read_posts(response, posts: queue.Queue) -> None:
    """Queues every post line of the stream (heartbeats are blank lines)."""
    try:
        for line in response.iter_lines():
            if line.strip():
                posts.put(json.loads(line))
    except Exception as error:  # the connection closed: the reader ends
        say(f"stream reader ended: {type(error).__name__}: {error}")


with step("add-rules"):
    answer = client.add_rules([{"value": match, "tag": "compat-tag"}])
    say(f"add_rules: {answer}")
    check(answer.get("summary", {}).get("created") == 1,
          f"summary.created is not 1: {answer}")
    rule_id = answer["detail"][0]["rule"]["id"]

with step("connect-stream"):
    response = client.connect_stream()
    check(response.status_code == 200, f"the stream answered HTTP {response.status_code}")
    posts: queue.Queue = queue.Queue()
    threading.Thread(target=read_posts, args=(response, posts), daemon=True).start()

with step("receive-match"):
    feed("first", match)
    texts = []
    while True:
        post = posts.get(timeout=RECEIVE_TIMEOUT)
        texts.append(post.get("text", ""))
        if match in post.get("text", ""):
            break
    received("first", post["id_str"])
    check(post["text"] == f"{match} post {post['id_str']}", f"unexpected text {post['text']!r}")
    rules = post.get("matching_rules")
    check(rules == [{"id": rule_id, "id_str": str(rule_id), "tag": "compat-tag"}],
          f"matching_rules is {rules}, expected the rule {rule_id} with its tag")
    check_nonmatching(texts, [])
    response.close()

with step("usage"):
    usage = client.get_metrics()
    say(f"get_metrics: {json.dumps(usage)[:2000]}")
    check(usage.get("account", {}).get("name") == ACCOUNT, f"account is not {ACCOUNT}: {usage}")
    check(usage.get("bucket") == "month", f"bucket is not month by default: {usage.get('bucket')}")
    twitter = usage["publishers"][0]
    check(twitter["type"] == "twitter", f"publisher is {twitter['type']}")
    check(len(twitter["used"]) == 3, f"not three months: {twitter['used']}")
    delivered = sum(entry["activities"] for entry in twitter["used"])
    check(delivered >= 1, f"the matching post delivered is not counted: {twitter['used']}")
    products = {p["type"]: p for p in twitter["products"]}
    check("PowerTrack" in products, f"no PowerTrack product: {list(products)}")
    endpoints = {e["label"]: e for e in products["PowerTrack"]["endpoints"]}
    check("prod" in endpoints, f"no prod stream: {list(endpoints)}")
    check(sum(e["activities"] for e in endpoints["prod"]["used"]) == delivered,
          "the stream's count is not the account's")

finish()
