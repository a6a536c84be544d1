#!/usr/bin/env python3
"""The compatibility suite's harness: real X API v2 clients against a real `sluice serve`.

For each client it starts its own `sluice serve` on a free 127.0.0.1 port with a fresh
data directory (with `--intercept` for the clients that hard-code `https://api.twitter.com`
and can only be pointed elsewhere through an HTTPS proxy, with `--tls-self-signed` for a
client that speaks only HTTPS), creates an account and an app,
runs the client's scenario script, feeds posts through `/ingest` when the scenario asks
for them, and stops the server with SIGTERM. It prints one PASS/FAIL line per client and
step and exits 1 when any step failed.

Scenarios talk to the harness through their stdout: a line `@@ {json}` is an event, any
other line is the scenario's log. Events:

- `{"step": NAME, "ok": true}` / `{"step": NAME, "ok": false, "detail": "…"}`: a step
  passed or failed (a failed step ends the scenario);
- `{"feed": PHASE, "match": KEYWORD, "stale": [KEYWORD, …]}`: the scenario's stream is
  (being) connected; every 0.5 s, until the scenario reports receipt or 30 s have passed,
  the harness ingests one body of: a post no rule matches (text starting `unrelated`),
  one post per stale keyword (a deleted rule's), then a post matching KEYWORD, whose text
  is `KEYWORD post ID`. Posts go in that order in one body, so a client that receives the
  matching post would have received the others first had the server delivered them;
- `{"received": PHASE, "id": ID}`: the scenario got the matching post; feeding stops.

Only the standard library is used, so it runs on any Python 3.9+.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import secrets
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from email.utils import format_datetime
from datetime import datetime, timezone
from pathlib import Path

COMPAT_DIR = Path(__file__).resolve().parent

# The author of every fed post; scenarios check it comes back in `includes.users`.
AUTHOR_ID = "2244994945"
AUTHOR_USERNAME = "compat_author"
AUTHOR_NAME = "Compat Author"

SERVER_START_TIMEOUT = 20.0
FEED_INTERVAL = 0.5
FEED_TIMEOUT = 30.0
SCENARIO_TIMEOUT = 150.0
STOP_TIMEOUT = 15.0


@dataclass
class Client:
    """One client scenario: the command that runs it and the steps it reports."""

    name: str
    command: list[str]
    steps: list[str]
    # How the client reaches sluice: "http" (a base URL), "https" (a base URL, and the
    # client speaks only HTTPS: `serve --tls-self-signed`, its certificate trusted through
    # NODE_EXTRA_CA_CERTS) or "intercept" (the client hard-codes https://api.twitter.com:
    # `serve --intercept` is its HTTPS proxy, its CA trusted through REQUESTS_CA_BUNDLE).
    transport: str


CYCLE = [
    "add-rules",
    "list-rules",
    "connect-stream",
    "receive-match",
    "expansions",
    "no-nonmatching",
    "delete-rules",
    "reconnect",
]


# The steps of the enterprise (Gnip) clients: PowerTrack rules and stream, then the
# Usage API.
GNIP_CYCLE = [
    "add-rules",
    "connect-stream",
    "receive-match",
    "usage",
]

# The basic-auth user `provision` creates for the enterprise clients.
GNIP_USER = "compat-user"


def clients(python: str, node: str) -> list[Client]:
    """Every client scenario of the suite, in report order."""
    py = COMPAT_DIR / "python"
    js = COMPAT_DIR / "node"
    return [
        Client("tweepy", [python, str(py / "tweepy_cycle.py")], CYCLE, transport="intercept"),
        Client(
            "twarc",
            [python, str(py / "twarc_cycle.py")],
            ["oauth2-token", *CYCLE],
            transport="intercept",
        ),
        Client(
            "twarc2-cli",
            [python, str(py / "twarc2_cli_cycle.py")],
            CYCLE,
            transport="intercept",
        ),
        Client(
            "python-gnip",
            [python, str(py / "python_gnip_cycle.py")],
            GNIP_CYCLE,
            transport="http",
        ),
        Client(
            "twitter-api-v2",
            [node, str(js / "twitter_api_v2_cycle.mjs")],
            CYCLE,
            transport="https",
        ),
        Client(
            "twitter-api-sdk",
            [node, str(js / "twitter_api_sdk_cycle.mjs")],
            CYCLE,
            transport="http",
        ),
    ]


# --- HTTP to the server (always direct: the environment's proxies are ignored) ---

def http(method: str, url: str, token: str | None = None, body: bytes | None = None,
         content_type: str = "application/json", timeout: float = 10.0,
         cafile: Path | None = None):
    """`method url` with an optional bearer token, never through the environment's
    proxies, trusting `cafile` for HTTPS; returns (status, body bytes)."""
    handlers: list = [urllib.request.ProxyHandler({})]
    if cafile is not None:
        context = ssl.create_default_context(cafile=str(cafile))
        handlers.append(urllib.request.HTTPSHandler(context=context))
    request = urllib.request.Request(url, data=body, method=method)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    if body is not None:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.build_opener(*handlers).open(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


class StepFailed(Exception):
    """A harness step (starting the server, provisioning) failed; the message says why."""


# --- the server ---


class Server:
    """A `sluice serve` process on 127.0.0.1 with its own data directory."""

    def __init__(self, sluice: str, workdir: Path, transport: str):
        self.transport = transport
        self.data_dir = workdir / "data"
        self.admin_token = secrets.token_urlsafe(24)
        self.log_path = workdir / "server.log"
        self.url: str | None = None
        args = [
            sluice, "serve",
            "--listen", "127.0.0.1:0",
            "--data-dir", str(self.data_dir),
            f"--admin-token={self.admin_token}",
        ]
        if transport == "intercept":
            args.append("--intercept")
        elif transport == "https":
            args.append("--tls-self-signed")
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
        env.setdefault("RUST_LOG", "info")
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._log,
            env=env, cwd=workdir,
        )
        self._banner: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read_stdout, daemon=True).start()

    def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self._log.write(f"[stdout] {line}\n".encode())
            self._log.flush()
            self._banner.put(line)
        self._banner.put(None)

    def wait_ready(self) -> None:
        """Waits for the banner's `listening on URL` line and a 200 from `/healthz`."""
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while self.url is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise StepFailed(f"no 'listening on' banner within {SERVER_START_TIMEOUT:.0f} s")
            try:
                line = self._banner.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                code = self.process.wait()
                raise StepFailed(f"sluice serve exited with {code}: {self.log_tail()}")
            if " listening on " in line:
                self.url = line.split(" listening on ", 1)[1].strip().rstrip("/")
        scheme = "https" if self.transport == "https" else "http"
        if not self.url.startswith(f"{scheme}://127.0.0.1:"):
            raise StepFailed(f"the server listens on {self.url}, not {scheme} on 127.0.0.1")
        while True:
            try:
                status, _ = http("GET", f"{self.url}/healthz", timeout=2, cafile=self.cert)
                if status == 200:
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise StepFailed(f"/healthz did not answer 200 within {SERVER_START_TIMEOUT:.0f} s")
            time.sleep(0.1)

    @property
    def cert(self) -> Path | None:
        """The self-signed certificate of `--tls-self-signed`, for an HTTPS listener."""
        return self.data_dir / "tls" / "cert.pem" if self.transport == "https" else None

    @property
    def ca(self) -> Path:
        """The CA `--intercept` signs X's hosts' certificates with."""
        return self.data_dir / "tls" / "ca.pem"

    @property
    def port(self) -> int:
        assert self.url is not None
        return int(self.url.rsplit(":", 1)[1])

    def admin(self, method: str, path: str, body: dict) -> tuple[int, dict]:
        status, raw = http(method, f"{self.url}{path}", self.admin_token,
                           json.dumps(body).encode(), cafile=self.cert)
        try:
            return status, json.loads(raw) if raw else {}
        except json.JSONDecodeError:
            return status, {"unparsed": raw.decode("utf-8", "replace")}

    def ingest(self, lines: list[str]) -> None:
        body = ("\n".join(lines) + "\n").encode()
        status, raw = http("POST", f"{self.url}/ingest", self.admin_token, body,
                           content_type="application/x-ndjson", cafile=self.cert)
        answer = json.loads(raw) if status == 200 else None
        if status != 200 or answer.get("accepted") != len(lines) or answer.get("rejected"):
            raise StepFailed(f"/ingest answered {status}: {raw[:300]!r}")

    def stop(self) -> str | None:
        """SIGTERM, then wait; returns a complaint if it had to be killed."""
        if self.process.poll() is not None:
            self._log.close()
            return None
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_TIMEOUT)
            complaint = None
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            complaint = f"sluice serve did not stop within {STOP_TIMEOUT:.0f} s of SIGTERM"
        self._log.close()
        return complaint

    def log_tail(self, lines: int = 5) -> str:
        try:
            text = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(text[-lines:])


# --- posts ---

_TWITTER_EPOCH_MS = 1288834974657
_next_sequence = 0
_sequence_lock = threading.Lock()


def fresh_id() -> int:
    """A Snowflake-shaped id never handed out before by this process (the server drops a
    repeated id for 5 minutes, docs/ingest.md)."""
    global _next_sequence
    with _sequence_lock:
        _next_sequence += 1
        sequence = _next_sequence
    return ((int(time.time() * 1000) - _TWITTER_EPOCH_MS) << 22) | (sequence & 0x3FFFFF)


def native_post(post_id: int, text: str) -> str:
    """A native post (docs/compatibility.md §8) by the compat author."""
    now = datetime.now(timezone.utc)
    return json.dumps({
        "created_at": now.strftime("%a %b %d %H:%M:%S +0000 %Y"),
        "id": post_id,
        "id_str": str(post_id),
        "text": text,
        "source": "sluice compat",
        "user": {
            "id": int(AUTHOR_ID),
            "id_str": AUTHOR_ID,
            "screen_name": AUTHOR_USERNAME,
            "name": AUTHOR_NAME,
            "created_at": format_datetime(now),
        },
        "entities": {"hashtags": [], "urls": [], "user_mentions": [], "symbols": []},
        "lang": "en",
    })


class Feeder:
    """Ingests one phase's posts every FEED_INTERVAL until stopped or FEED_TIMEOUT."""

    def __init__(self, server: Server, log, match: str, stale: list[str]):
        self.server = server
        self.log = log
        self.match = match
        self.stale = stale
        self.matching_ids: set[str] = set()
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        deadline = time.monotonic() + FEED_TIMEOUT
        while not self._stop.is_set() and time.monotonic() < deadline:
            lines = [native_post(fresh_id(), "unrelated chatter about the weather")]
            lines += [native_post(fresh_id(), f"{keyword} from a deleted rule")
                      for keyword in self.stale]
            match_id = fresh_id()
            lines.append(native_post(match_id, f"{self.match} post {match_id}"))
            try:
                self.server.ingest(lines)
                self.matching_ids.add(str(match_id))
            except (StepFailed, OSError) as error:
                self.error = str(error)
                self.log(f"[harness] ingest failed: {error}")
            self._stop.wait(FEED_INTERVAL)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


# --- one client ---


@dataclass
class Outcome:
    """What happened to each step of one client: step → (ok, detail)."""

    client: Client
    results: dict[str, tuple[bool, str]] = field(default_factory=dict)
    log_path: Path | None = None

    def record(self, step: str, ok: bool, detail: str = "") -> None:
        if step not in self.results:
            self.results[step] = (ok, detail)

    def failed(self) -> bool:
        return any(not ok for ok, _ in self.results.values())

    def lines(self) -> list[str]:
        out = []
        first_failure = None
        for step in ["serve", "provision", *self.client.steps, "scenario", "shutdown"]:
            if step in self.results:
                ok, detail = self.results[step]
                if not ok and first_failure is None:
                    first_failure = step
            elif step in ("scenario", "shutdown"):
                continue
            else:
                ok, detail = False, f"not reached ({first_failure or 'scenario'} failed)"
            status = "PASS" if ok else "FAIL"
            out.append(f"{status} {self.client.name} {step}" + (f": {detail}" if detail else ""))
        return out


def provision(server: Server) -> dict:
    """Account `compat` and one app, and for the enterprise clients a basic-auth user and
    a PowerTrack stream labelled `prod`; returns the app's credentials and the user's
    password (`user_password`)."""
    status, body = server.admin("PUT", "/admin/accounts/compat", {})
    if status not in (200, 201):
        raise StepFailed(f"PUT /admin/accounts/compat answered {status}: {body}")
    status, app = server.admin("POST", "/admin/accounts/compat/apps", {"name": "compat"})
    keys = ("app_id", "consumer_key", "consumer_secret", "bearer_token")
    if status != 201 or not all(isinstance(app.get(k), str) and app[k] for k in keys):
        raise StepFailed(f"POST /admin/accounts/compat/apps answered {status}: {app}")
    password = secrets.token_hex(12)
    for path, body in [(f"/admin/accounts/compat/users/{GNIP_USER}", {"password": password}),
                       ("/admin/accounts/compat/streams/prod", {"product": "powertrack"})]:
        status, answer = server.admin("PUT", path, body)
        if status not in (200, 201):
            raise StepFailed(f"PUT {path} answered {status}: {answer}")
    return {**app, "user_password": password}


def scenario_env(server: Server, app: dict, client: Client, workdir: Path) -> dict:
    """The scenario's environment: where sluice is, the app's credentials, the author;
    the certificate or CA to trust for HTTPS and the proxy for intercepted clients, and
    nothing else that redirects or changes trust."""
    env = {k: v for k, v in os.environ.items()
           if k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy",
                                "requests_ca_bundle", "curl_ca_bundle", "ssl_cert_file",
                                "node_extra_ca_certs")
           and not k.startswith("SLUICE_")}
    env.update({
        "SLUICE_COMPAT_URL": server.url or "",
        "SLUICE_COMPAT_BEARER": app["bearer_token"],
        "SLUICE_COMPAT_CONSUMER_KEY": app["consumer_key"],
        "SLUICE_COMPAT_CONSUMER_SECRET": app["consumer_secret"],
        "SLUICE_COMPAT_AUTHOR_ID": AUTHOR_ID,
        "SLUICE_COMPAT_AUTHOR_USERNAME": AUTHOR_USERNAME,
        "SLUICE_COMPAT_WORKDIR": str(workdir),
        "SLUICE_COMPAT_USER": GNIP_USER,
        "SLUICE_COMPAT_PASSWORD": app["user_password"],
        "SLUICE_COMPAT_NODE_MODULES": os.environ.get("SLUICE_COMPAT_NODE_MODULES", ""),
        "PYTHONUNBUFFERED": "1",
        # twarc2 reads ~/.config/twarc; a private HOME keeps the machine's config out.
        "HOME": str(workdir / "home"),
    })
    (workdir / "home").mkdir(exist_ok=True)
    if server.cert is not None:
        env["NODE_EXTRA_CA_CERTS"] = str(server.cert)
    if client.transport == "intercept":
        proxy = f"http://127.0.0.1:{server.port}"
        env.update({
            "HTTPS_PROXY": proxy,
            "https_proxy": proxy,
            "NO_PROXY": "",
            "no_proxy": "",
            "REQUESTS_CA_BUNDLE": str(server.ca),
        })
    return env


def run_client(client: Client, sluice: str, root: Path) -> Outcome:
    """The whole cycle of one client against its own server."""
    outcome = Outcome(client)
    workdir = Path(tempfile.mkdtemp(prefix=f"{client.name}-", dir=root))
    log_path = workdir / "scenario.log"
    outcome.log_path = log_path
    log_file = open(log_path, "w", buffering=1)

    def log(line: str) -> None:
        log_file.write(line + "\n")

    server = Server(sluice, workdir, client.transport)
    try:
        try:
            server.wait_ready()
            if client.transport == "intercept" and not server.ca.is_file():
                raise StepFailed(f"it wrote no CA certificate at {server.ca}")
            outcome.record("serve", True)
        except StepFailed as error:
            flag = {"intercept": " --intercept", "https": " --tls-self-signed"}.get(
                client.transport, "")
            outcome.record("serve", False, f"sluice serve{flag}: {error}")
            return outcome
        try:
            app = provision(server)
            outcome.record("provision", True)
        except StepFailed as error:
            outcome.record("provision", False, str(error))
            return outcome
        drive_scenario(client, server, app, workdir, outcome, log)
    finally:
        complaint = server.stop()
        if complaint:
            outcome.record("shutdown", False, complaint)
        log(f"[harness] server log: {server.log_path}")
        log_file.close()
    return outcome


def drive_scenario(client: Client, server: Server, app: dict, workdir: Path,
                   outcome: Outcome, log) -> None:
    """Runs the scenario process, answering its feed requests, until it exits."""
    process = subprocess.Popen(
        client.command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, env=scenario_env(server, app, client, workdir),
        cwd=workdir, start_new_session=True,
    )
    feeders: dict[str, Feeder] = {}
    timed_out = threading.Event()

    def kill() -> None:
        timed_out.set()
        kill_group(process)

    timer = threading.Timer(SCENARIO_TIMEOUT, kill)
    timer.start()
    try:
        assert process.stdout is not None
        for raw in process.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            log(line)
            if not line.startswith("@@ "):
                continue
            try:
                event = json.loads(line[3:])
            except json.JSONDecodeError:
                outcome.record("scenario", False, f"unreadable event {line!r}")
                continue
            handle_event(event, server, feeders, outcome, log)
        code = process.wait()
    finally:
        timer.cancel()
        kill_group(process)  # what the scenario started and left running (twarc2 stream)
        for feeder in feeders.values():
            feeder.stop()
    if code != 0 and not outcome.failed():
        # Killed by the timer, or died without saying which step failed.
        pending = next((s for s in client.steps if s not in outcome.results), "scenario")
        why = (f"killed after {SCENARIO_TIMEOUT:.0f} s" if timed_out.is_set()
               else f"scenario exited with {code}")
        outcome.record(pending, False, f"{why}, see {outcome.log_path}")
    for phase, feeder in feeders.items():
        if feeder.error:
            outcome.record("scenario", False, f"feeding phase {phase}: {feeder.error}")


def kill_group(process: subprocess.Popen) -> None:
    """SIGKILL to the scenario's process group (its own session, started by the harness)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def handle_event(event: dict, server: Server, feeders: dict[str, Feeder],
                 outcome: Outcome, log) -> None:
    if "step" in event:
        outcome.record(event["step"], bool(event.get("ok")), str(event.get("detail", "")))
    elif "feed" in event:
        phase = str(event["feed"])
        if phase not in feeders:
            log(f"[harness] feeding phase {phase}")
            feeders[phase] = Feeder(server, log, str(event["match"]),
                                    [str(k) for k in event.get("stale", [])])
    elif "received" in event:
        phase = str(event["received"])
        feeder = feeders.get(phase)
        if feeder is None:
            outcome.record("scenario", False, f"received a post of phase {phase} never fed")
            return
        feeder.stop()
        if str(event.get("id")) not in feeder.matching_ids:
            outcome.record("scenario", False,
                           f"phase {phase}: the client reported post {event.get('id')}, "
                           f"which the harness never ingested as a match")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sluice", required=True, help="the sluice binary")
    parser.add_argument("--python", default=sys.executable,
                        help="the Python with tweepy and twarc installed")
    parser.add_argument("--node", default="node")
    parser.add_argument("--keep", action="store_true",
                        help="keep the working directories (logs, data dirs)")
    parser.add_argument("clients", nargs="*", help="clients to run (default: all)")
    args = parser.parse_args()

    every = clients(args.python, args.node)
    names = [c.name for c in every]
    chosen = [c for c in every if not args.clients or c.name in args.clients]
    unknown = [n for n in args.clients if n not in names]
    if unknown:
        print(f"unknown client(s) {', '.join(unknown)}; known: {', '.join(names)}",
              file=sys.stderr)
        return 2

    root = Path(tempfile.mkdtemp(prefix="sluice-compat-"))
    outcomes: dict[str, Outcome] = {}

    def run(client: Client) -> None:
        try:
            outcomes[client.name] = run_client(client, args.sluice, root)
        except Exception as error:  # the harness itself broke: a failure, never a pass
            outcome = Outcome(client)
            outcome.record("serve", False, f"harness error: {error!r}")
            outcomes[client.name] = outcome

    started = time.monotonic()
    threads = [threading.Thread(target=run, args=(c,)) for c in chosen]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    failed = False
    for client in chosen:
        outcome = outcomes[client.name]
        for line in outcome.lines():
            print(line)
        if outcome.failed() or any(s not in outcome.results for s in client.steps):
            failed = True
            if outcome.log_path and outcome.log_path.exists():
                print(f"  log of {client.name}: {outcome.log_path}")
    print(f"compat: {len(chosen)} client(s) in {time.monotonic() - started:.0f} s: "
          f"{'FAILED' if failed else 'all steps passed'}")
    if not failed and not args.keep:
        import shutil
        shutil.rmtree(root, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
