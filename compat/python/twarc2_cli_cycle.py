"""The `twarc2` command line through the whole filtered-stream cycle against sluice:
`stream-rules add/list/delete` and `twarc2 stream --limit 1 FILE` with twarc's default
(every) expansion and field.

twarc hard-codes https://api.twitter.com; the only change here is the environment the
harness sets: HTTPS_PROXY (sluice serve --intercept) and REQUESTS_CA_BUNDLE (its CA)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

from cycle import (BEARER, check_author, RECEIVE_TIMEOUT, WORKDIR, check,
                   check_nonmatching, check_post, feed, is_id, keyword, received, say,
                   step, finish)

TWARC2 = str(Path(sys.executable).with_name("twarc2"))
COMMAND_TIMEOUT = 30


def twarc2(*args: str) -> subprocess.CompletedProcess:
    """One `twarc2 --bearer-token … ARGS` run; fails the step on a non-zero exit."""
    command = [TWARC2, "--bearer-token", BEARER, *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=COMMAND_TIMEOUT,
                          stdin=subprocess.DEVNULL)
    say(f"$ twarc2 {' '.join(args)}\n{done.stdout}{done.stderr}")
    check(done.returncode == 0, f"twarc2 {' '.join(args)} exited with {done.returncode}: "
          f"{tail(done.stderr)}")
    return done


def tail(text: str, lines: int = 3) -> str:
    return " | ".join(text.strip().splitlines()[-lines:])


def listed_rules() -> list[tuple[str, str, str]]:
    """`stream-rules list --display-ids` as (value, tag, id) triples."""
    done = twarc2("stream-rules", "list", "--display-ids")
    return re.findall(r"☑\s+(.*) \(tag: (.*)\) \(id: (.*)\)", done.stderr)


class CliStream:
    """`twarc2 stream --limit 1 FILE` running in the background."""

    def __init__(self, name: str):
        self.path = Path(WORKDIR) / f"{name}.jsonl"
        self.stderr: list[str] = []
        self.writing = threading.Event()
        self.process = subprocess.Popen(
            [TWARC2, "--bearer-token", BEARER, "stream", "--limit", "1", str(self.path)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True,
        )
        threading.Thread(target=self._read_stderr, daemon=True).start()

    def _read_stderr(self) -> None:
        for line in self.process.stderr:
            say(f"[twarc2 stream] {line.rstrip()}")
            self.stderr.append(line)
            if line.startswith("Writing to"):
                self.writing.set()

    def wait_started(self) -> None:
        deadline = time.monotonic() + COMMAND_TIMEOUT
        while not self.writing.wait(0.1):
            check(self.process.poll() is None,
                  f"twarc2 stream exited with {self.process.returncode}: "
                  f"{tail(''.join(self.stderr))}")
            check(time.monotonic() < deadline, "twarc2 stream did not start")

    def first_line(self) -> dict:
        """The first object twarc2 wrote to the file."""
        deadline = time.monotonic() + RECEIVE_TIMEOUT
        while True:
            text = self.path.read_text() if self.path.exists() else ""
            if "\n" in text:
                return json.loads(text.split("\n", 1)[0])
            check(self.process.poll() is None or self.process.returncode == 0,
                  f"twarc2 stream exited with {self.process.returncode}: "
                  f"{tail(''.join(self.stderr))}")
            check(time.monotonic() < deadline,
                  f"twarc2 stream wrote nothing within {RECEIVE_TIMEOUT:.0f} s")
            time.sleep(0.2)

    def finish(self) -> list[dict]:
        """Waits for `--limit 1` to end the command; returns every object it wrote."""
        try:
            code = self.process.wait(timeout=25)
        except subprocess.TimeoutExpired:
            self.process.kill()
            check(False, "twarc2 stream --limit 1 did not exit after its post")
        check(code == 0, f"twarc2 stream exited with {code}: {tail(''.join(self.stderr))}")
        return [json.loads(line) for line in self.path.read_text().splitlines() if line]


def add_rule(value: str, tag: str) -> str:
    done = twarc2("stream-rules", "add", "--tag", tag, value)
    check(f'Added rule for "{value}"' in done.stdout, f"twarc2 printed {tail(done.stdout)}"
          f" {tail(done.stderr)}")
    rules = listed_rules()
    ids = [rule_id for v, t, rule_id in rules if v == value and t == tag]
    check(len(ids) == 1 and is_id(ids[0]), f"stream-rules list shows {rules}")
    return ids[0]


def check_matching(phase: str, item: dict, match: str, rule_id: str, tag: str) -> None:
    data = item.get("data", {})
    check_post(phase, data.get("text"), data.get("id"), match)
    rules = item.get("matching_rules")
    check(rules == [{"id": rule_id, "tag": tag}],
          f"matching_rules {rules}, expected only id {rule_id} tag {tag!r}")


def stream_one(name: str, phase: str, match: str, stale: list[str]) -> tuple[dict, list]:
    stream = CliStream(name)
    stream.wait_started()
    feed(phase, match, stale)
    first = stream.first_line()
    received(phase, first.get("data", {}).get("id"))
    return first, stream.finish()


def main() -> None:
    word_a, tag_a = keyword("a"), "compat-tag-a"
    word_b, tag_b = keyword("b"), "compat-tag-b"

    with step("add-rules"):
        done = twarc2("stream-rules", "add", "--tag", tag_a, word_a)
        check(f'Added rule for "{word_a}"' in done.stdout, f"twarc2 printed {done.stdout!r}")

    with step("list-rules"):
        rules = listed_rules()
        check(len(rules) == 1 and rules[0][:2] == (word_a, tag_a) and is_id(rules[0][2]),
              f"stream-rules list shows {rules}")
        rule_a = rules[0][2]

    with step("connect-stream"):
        stream = CliStream("first")
        stream.wait_started()
        feed("first", word_a)
        first = stream.first_line()

    with step("receive-match"):
        received("first", first.get("data", {}).get("id"))
        check_matching("first", first, word_a, rule_a, tag_a)
        written = stream.finish()

    with step("expansions", fatal=False):
        users = first.get("includes", {}).get("users", [])
        check_author(first.get("data", {}).get("author_id"),
                     [(u.get("id"), u.get("username")) for u in users])

    with step("no-nonmatching", fatal=False):
        check(len(written) == 1, f"twarc2 stream --limit 1 wrote {len(written)} objects")
        check_nonmatching([first.get("data", {}).get("text", "")], [])

    with step("delete-rules"):
        done = twarc2("stream-rules", "delete", word_a)
        check(f"Deleted stream rule for {word_a}" in done.stdout,
              f"twarc2 printed {done.stdout!r} {tail(done.stderr)}")
        done = twarc2("stream-rules", "list")
        check("No rules yet" in done.stderr, f"rules left: {tail(done.stderr)}")

    with step("reconnect"):
        rule_b = add_rule(word_b, tag_b)
        first, written = stream_one("second", "second", word_b, [word_a])
        check_nonmatching([first.get("data", {}).get("text", "")], [word_a])
        check_matching("second", first, word_b, rule_b, tag_b)
        check(len(written) == 1, f"twarc2 stream --limit 1 wrote {len(written)} objects")
        twarc2("stream-rules", "delete", word_b)


if __name__ == "__main__":
    main()
    finish()
