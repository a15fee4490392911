#!/usr/bin/env python3
"""Kills the server with SIGKILL at random moments while a stream of writes runs against it —
floating checkouts and releases, activations, clients made through the API and through the
portal — restarts it each time, and checks after every restart that nothing acknowledged was
lost and the books still balance:

  * every write the server acknowledged (201/204) is in the database;
  * every key's `in_use` equals the seats that hold it (no seat lost or counted twice);
  * SQLite's `PRAGMA integrity_check` says ok (PostgreSQL: the same consistency query).

    chaos.py SERVER_BIN [--kills N] [--database URL] [--seed S]

Without --database, a temporary SQLite file. A PostgreSQL URL must name an empty database
(psql reads it for the checks). Standard library only. Prints one line per kill and a summary;
exits non-zero at the first broken promise, saying which.
"""

import argparse
import http.client
import http.cookiejar
import json
import os
import random
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "api-tests"))
from fixtures import next_page, product_body  # noqa: E402

EMAIL, PASSWORD = "chaos@vendor.test", "chaos monkey password 2026"


def free_port():
    """A free port below the ephemeral range, so that no other process is handed it while the
    server is down between a kill and its restart."""
    rng = random.SystemRandom()
    for _ in range(100):
        port = rng.randrange(20000, 30000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise SystemExit("no free port between 20000 and 30000")


# Straight to the server, whatever proxy the environment names; redirects are not followed
# (a server function's answer is read as it is).
class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def opener(*handlers):
    return urllib.request.build_opener(urllib.request.ProxyHandler({}), NoRedirect(), *handlers)


class Server:
    """The server process, started and killed as the run goes."""

    def __init__(self, binary, env, log):
        self.binary, self.env, self.log, self.proc = binary, env, log, None

    def start(self):
        self.proc = subprocess.Popen([self.binary, "serve"], env=self.env,
                                     stdout=self.log, stderr=self.log)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"the server stopped at start (exit {self.proc.returncode})")
            try:
                opener().open(self.env["BASE"] + "/healthz", timeout=1)
                return
            except (OSError, http.client.HTTPException):
                time.sleep(0.05)
        raise SystemExit("the server did not answer within 30 s of starting")

    def kill(self):
        self.proc.kill()
        self.proc.wait()


def call(base, method, path, body=None, token=None, via=None, form=None):
    """(status, parsed body); status 0 when the server did not answer."""
    headers = {"Accept": "application/json"}
    data = None
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    elif body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    try:
        with (via or opener()).open(req, timeout=30) as res:
            raw, status = res.read(), res.status
    except urllib.error.HTTPError as e:
        raw, status = e.read(), e.code
    except (OSError, http.client.HTTPException):
        return 0, None
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw


class Ledger:
    """What the server acknowledged, to look for after each restart."""

    def __init__(self):
        self.lock = threading.Lock()
        self.clients = set()
        self.activations = set()
        self.seats_taken = {}  # seat id -> lease token, while held
        self.seats_released = set()
        self.server_errors = []

    def note(self, what, value):
        with self.lock:
            getattr(self, what).add(value)


def writer(base, setup, ledger, stop, rng, worker):
    """Random writes until the server dies (or `stop`)."""
    n = 0
    while not stop.is_set():
        n += 1
        op = rng.choice(["checkout", "checkout", "release", "client", "portal", "activate"])
        tag = f"{worker}-{n}-{rng.randrange(1 << 30)}"
        if op == "checkout":
            status, body = call(base, "POST", "/api/v1/seats", {
                "pool_key": setup["pool_key"], "feature": "F", "user": f"u{tag}",
                "host": f"h{tag}", "process": "chaos"})
            if status == 201:
                with ledger.lock:
                    ledger.seats_taken[body["seat_id"]] = body["lease_token"]
        elif op == "release":
            with ledger.lock:
                held = list(ledger.seats_taken.items())
            if not held:
                continue
            seat, token = rng.choice(held)
            status, body = call(base, "POST", f"/api/v1/seats/{seat}/release",
                                {"lease_token": token})
            if status == 204:
                with ledger.lock:
                    ledger.seats_taken.pop(seat, None)
                    ledger.seats_released.add(seat)
        elif op == "client":
            name = f"Chaos API {tag}"
            status, body = call(base, "POST", "/api/v1/clients", {"name": name},
                                token=setup["token"])
            if status == 201:
                ledger.note("clients", name)
        elif op == "portal":
            name = f"Chaos portal {tag}"
            status, body = call(base, "POST", "/rpc/create_client",
                                form={"client[name]": name}, via=setup["portal"],
                                )
            # A server function asked for JSON answers 200 with what it made.
            if status == 200 and isinstance(body, dict) and body.get("id"):
                ledger.note("clients", name)
        else:
            with ledger.lock:
                if not setup["keys"]:
                    continue
                key = setup["keys"].pop()
            fingerprint = f"{rng.randrange(1 << 62):064x}"
            status, body = call(base, "POST", "/api/v1/activations", {
                "licence_key": key, "fingerprint": fingerprint, "hostname": f"ws-{tag}"})
            if status == 201:
                ledger.note("activations", fingerprint)
        if status == 0:
            return  # killed
        if status >= 500 and status != 503:
            with ledger.lock:
                ledger.server_errors.append(f"{op}: {status} {body!r}"[:300])


class Database:
    """The checks, straight in the database."""

    def __init__(self, url):
        self.url = url

    def rows(self, sql):
        if self.url.startswith("sqlite:"):
            path = self.url.split("://", 1)[-1].split("?")[0]
            with sqlite3.connect(path) as conn:
                return [tuple(r) for r in conn.execute(sql).fetchall()]
        out = subprocess.run(["psql", "-qAtX", "-F", "\t", self.url, "-c", sql],
                             check=True, capture_output=True, text=True).stdout
        return [tuple(line.split("\t")) for line in out.splitlines() if line]

    def check(self, ledger):
        """The broken promises, in words (none: all kept)."""
        broken = []
        names = {r[0] for r in self.rows("SELECT name FROM clients")}
        lost = ledger.clients - names
        if lost:
            broken.append(f"{len(lost)} acknowledged clients are missing, e.g. {sorted(lost)[:3]}")
        fingerprints = {r[0] for r in self.rows(
            "SELECT fingerprint FROM activations WHERE removed_at IS NULL")}
        lost = ledger.activations - fingerprints
        if lost:
            broken.append(f"{len(lost)} acknowledged activations are missing")
        released = {int(r[0]) for r in self.rows(
            "SELECT id FROM seats WHERE released_at IS NOT NULL")}
        lost = ledger.seats_released - released
        if lost:
            broken.append(f"{len(lost)} acknowledged releases are undone: {sorted(lost)[:5]}")
        known = {int(r[0]) for r in self.rows("SELECT id FROM seats")}
        with ledger.lock:
            taken = set(ledger.seats_taken)
        lost = taken - known
        if lost:
            broken.append(f"{len(lost)} acknowledged checkouts are missing: {sorted(lost)[:5]}")
        unbalanced = self.rows(
            "SELECT k.id, k.in_use, (SELECT COALESCE(SUM(s.amount), 0) FROM seats s "
            "WHERE s.key_id = k.id AND s.released_at IS NULL) AS held FROM pool_keys k")
        for key, in_use, held in unbalanced:
            if int(in_use) != int(held):
                broken.append(f"key {key}: in_use {in_use} but its live seats hold {held}")
        if self.url.startswith("sqlite:"):
            verdict = self.rows("PRAGMA integrity_check")
            if verdict != [("ok",)]:
                broken.append(f"integrity_check: {verdict[:3]}")
        return broken


def prepare(base, server_bin, env, keys_wanted):
    subprocess.run([server_bin, "migrate"], env=env, check=True, capture_output=True)
    subprocess.run([server_bin, "admin", "create", "--email", EMAIL, "--name", "Chaos"],
                   env=env, input=PASSWORD + "\n", text=True, check=True, capture_output=True)
    jar = http.cookiejar.CookieJar()
    portal = opener(urllib.request.HTTPCookieProcessor(jar))
    status, _ = call(base, "POST", "/rpc/sign_in", form={"email": EMAIL, "password": PASSWORD},
                     via=portal)
    assert status == 200, f"sign-in: {status}"
    status, made = call(base, "POST", "/rpc/create_api_token", via=portal, form={
        "name": "chaos", "access": "write", "password": PASSWORD})
    assert status == 200, f"token: {status} {made}"
    token = made["secret"]
    _, product = call(base, "POST", "/api/v1/products", product_body("CHAOS", "Chaos"),
                      token=token)
    _, client = call(base, "POST", "/api/v1/clients", {"name": "Chaos Office"}, token=token)
    keys = []
    while len(keys) < keys_wanted:
        status, order = call(base, "POST", "/api/v1/orders", {
            "client_id": client["id"], "product_id": product["id"],
            "quantity": min(1000, keys_wanted - len(keys))}, token=token)
        assert status == 201, f"order: {status} {order}"
        path = f"/api/v1/orders/{order['id']}/licences?limit=500"
        while path:
            req = urllib.request.Request(base + path,
                                         headers={"Authorization": f"Bearer {token}"})
            with opener().open(req, timeout=30) as res:
                keys += [lic["key"] for lic in json.loads(res.read())]
                path = next_page(res.headers.get("Link"))
    _, pool = call(base, "POST", "/api/v1/pools", {"client_id": client["id"], "name": "Chaos"},
                   token=token)
    status, _ = call(base, "POST", f"/api/v1/pools/{pool['id']}/keys", {
        "editor": "Vendor", "feature": "F", "model": "ConcurrentUser", "quantity": 1000000},
        token=token)
    assert status == 201, "a pool key"
    return {"token": token, "portal": portal, "keys": keys, "pool_key": pool["access_key"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("server_bin")
    ap.add_argument("--kills", type=int, default=200)
    ap.add_argument("--database", help="a PostgreSQL URL (empty database); default SQLite")
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--writers", type=int, default=4)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    work = tempfile.mkdtemp(prefix="licentia-chaos.")
    port = free_port()
    url = args.database or f"sqlite://{work}/chaos.db"
    # Nothing of the caller's own Licentia settings (a port, a public URL, a master key).
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("LICENTIA_")}
    env = dict(inherited, DATABASE_URL=url, LICENTIA_LISTEN=f"127.0.0.1:{port}",
               LICENTIA_MASTER_KEY_FILE=f"{work}/master.key", RUST_LOG="warn",
               LICENTIA_CHURN_MAX_EVENTS="1000000",
               LICENTIA_CHECKOUT_MAX_PER_MINUTE_POOL="1000000",
               BASE=f"http://127.0.0.1:{port}")
    base = env["BASE"]
    log = open(f"{work}/server.log", "ab")
    server = Server(args.server_bin, env, log)
    db = Database(url)
    ledger = Ledger()
    print(f"chaos: {args.kills} kills on {'PostgreSQL' if args.database else 'SQLite'}, "
          f"seed {args.seed}")
    started = time.time()
    try:
        server.start()
        setup = prepare(base, args.server_bin, env, keys_wanted=max(500, args.kills * 60))
        writes_before = 0
        for kill in range(1, args.kills + 1):
            stop = threading.Event()
            threads = [threading.Thread(target=writer, daemon=True,
                                        args=(base, setup, ledger, stop,
                                              random.Random(rng.random()), w))
                       for w in range(args.writers)]
            for t in threads:
                t.start()
            time.sleep(rng.uniform(0.05, 1.0))
            server.kill()
            stop.set()
            for t in threads:
                t.join(timeout=35)
            server.start()
            broken = db.check(ledger)
            writes = (len(ledger.clients) + len(ledger.activations)
                      + len(ledger.seats_taken) + len(ledger.seats_released))
            print(f"  kill {kill:3}: {writes - writes_before:4} acknowledged writes since, "
                  f"{'all there, books balance' if not broken else 'BROKEN'}", flush=True)
            writes_before = writes
            if broken or ledger.server_errors:
                for b in broken + ledger.server_errors:
                    print(f"    {b}")
                raise SystemExit(1)
        # Each kind of write must have been acknowledged, or the checks above proved nothing.
        kinds = {"clients through the API": sum(c.startswith("Chaos API") for c in ledger.clients),
                 "clients through the portal": sum(c.startswith("Chaos portal")
                                                   for c in ledger.clients),
                 "activations": len(ledger.activations), "releases": len(ledger.seats_released),
                 "checkouts": len(ledger.seats_taken) + len(ledger.seats_released)}
        missing = [kind for kind, n in kinds.items() if n == 0]
        if missing:
            print(f"chaos: no {', no '.join(missing)} acknowledged: the run checked nothing of them")
            raise SystemExit(1)
        print(f"chaos: {args.kills} kills survived; {len(ledger.clients)} clients, "
              f"{len(ledger.activations)} activations, {len(ledger.seats_released)} releases "
              f"and {len(ledger.seats_taken)} seats still held acknowledged and all found; "
              f"in_use balanced and integrity ok after every restart "
              f"({time.time() - started:.0f} s)")
    finally:
        if server.proc and server.proc.poll() is None:
            server.kill()
        log.close()
        if not os.environ.get("LICENTIA_CHAOS_KEEP"):
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
