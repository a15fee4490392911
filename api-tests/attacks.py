#!/usr/bin/env python3
"""Performs the attacks of the security review against a running server, from outside the Rust
code, with the standard library only, and checks that each is refused with a clear problem,
changes nothing and never gets a 5xx:

  1. a burst of parallel sign-ins that would all hash a password (the server's memory is read
     from /proc while it runs);
  2. taking over someone's floating seat by replaying their user and host with the pool key,
     and guessing pool keys by a flood of checkouts;
  3. a form posted to the portal from another site (and login CSRF);
  4. locking a user out by failing at their account from another address;
  5. using an API token after its owner's password was reset;
  6. draining a pool with what a read-only token can read;
  7. NUL characters and invalid UTF-8 in paths and fields;
  8. oversized pages and forged cursors, and a read-only token walking a list page by page.

    attacks.py BASE_URL ADMIN_EMAIL ADMIN_PASSWORD SERVER_PID

The server must trust X-Forwarded-For (LICENTIA_TRUST_FORWARDED_FOR=true), so that one process
here can speak from several addresses. Prints one line per check and a summary; exits non-zero
if any check fails.
"""

import concurrent.futures
import http.cookiejar
import json
import os
import secrets
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

from fixtures import Tally, next_page, product_body

BASE, ADMIN_EMAIL, ADMIN_PASSWORD = sys.argv[1].rstrip("/"), sys.argv[2], sys.argv[3]
SERVER_PID = int(sys.argv[4])
tally = Tally()
check = tally.check
server_errors = []


class Answer:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def problem_type(self):
        return self.body.get("type") if isinstance(self.body, dict) else None

    def __repr__(self):
        return f"{self.status} {self.body!r}"[:400]


def request(method, path, body=None, headers=None, opener=None, form=None):
    """One HTTP request; any 5xx is remembered as a failure of the whole run."""
    headers = dict(headers or {})
    data = None
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
    elif body is not None:
        data = json.dumps(body).encode()
        headers.setdefault("Content-Type", "application/json")
    headers.setdefault("Accept", "application/json")
    req = urllib.request.Request(f"{BASE}{path}", data=data, method=method, headers=headers)
    open_ = (opener or urllib.request.build_opener()).open
    try:
        with open_(req, timeout=60) as res:
            status, res_headers, raw = res.status, res.headers, res.read()
    except urllib.error.HTTPError as e:
        status, res_headers, raw = e.code, e.headers, e.read()
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = raw.decode(errors="replace")
    if status >= 500:
        server_errors.append(f"{method} {path}: {status} {parsed!r}"[:300])
    return Answer(status, res_headers, parsed)


class Portal:
    """A browser session on the portal (cookies), optionally from a given address."""

    def __init__(self, address=None):
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        self.address = address

    def rpc(self, name, form, extra=None):
        headers = dict(extra or {})
        if self.address:
            headers["X-Forwarded-For"] = self.address
        return request("POST", f"/rpc/{name}", form=form, headers=headers, opener=self.opener)

    def sign_in(self, email, password):
        return self.rpc("sign_in", {"email": email, "password": password})


def api(method, path, token=None, body=None, headers=None):
    headers = dict(headers or {})
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return request(method, path, body=body, headers=headers)


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def error_of(answer):
    """The portal's error variant name ("Throttled", "Invalid", …)."""
    body = answer.body
    if isinstance(body, str):
        return body
    if isinstance(body, dict) and len(body) == 1:
        return next(iter(body))
    return None


def hashing_burst():
    print("== 1. a burst of parallel sign-ins")
    baseline = rss_kib(SERVER_PID)
    peak = [baseline]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], rss_kib(SERVER_PID))
            time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    n = 160

    def attempt(i):
        # A different account from a different address each time: no throttle stops them, so
        # every one of them would hash a password.
        b = Portal(address=f"10.{i // 200}.{i % 200}.9")
        return b.sign_in(f"burst-{i}@attack.test", "a password to hash 123")

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=n) as pool:
        answers = list(pool.map(attempt, range(n)))
    took = time.monotonic() - started
    done.set()
    sampler.join()
    statuses = sorted({a.status for a in answers})
    check(f"{n} parallel sign-ins are each answered 401 or 429, none 5xx ({statuses}, {took:.1f} s)",
          set(statuses) <= {401, 429}, statuses)
    busy = [a for a in answers if a.status == 429]
    check(f"the ones refused while hashing is full ({len(busy)}) say when to retry",
          all(a.headers.get("Retry-After") for a in busy))
    # At most a slot per core (2 to 16) hashes at once, 19 MiB each; the rest wait or are
    # refused. Without the cap the burst needs n × 19 MiB.
    slots = min(max(os.cpu_count() or 2, 2), 16)
    allowed_mib = (slots + 2) * 19 + 64
    grew_mib = (peak[0] - baseline) / 1024
    check(f"the server's memory stays bounded: grew {grew_mib:.0f} MiB (limit {allowed_mib} MiB, "
          f"{n} unbounded hashes would take {n * 19} MiB)", grew_mib < allowed_mib)

    # The setup link is checked before its password is hashed: a burst of guesses costs nothing.
    def setup(i):
        return Portal(address=f"10.9.{i}.9").rpc("complete_setup", {
            "token": secrets.token_urlsafe(32), "name": "Mallory", "email": f"m{i}@attack.test",
            "password": "a password to hash 123", "password_confirm": "a password to hash 123"})

    with concurrent.futures.ThreadPoolExecutor(max_workers=40) as pool:
        answers = list(pool.map(setup, range(40)))
    check("forged setup links are refused (410) and create no administrator",
          all(a.status == 410 for a in answers), sorted({a.status for a in answers}))


def seat_takeover(rw, pool_key):
    print("== 2. taking over a seat by replaying its user and host")
    mine = {"pool_key": pool_key, "feature": "CAD", "user": "ann", "host": "ws-ann",
            "process": "cad.exe", "installation": "ann's installation " + secrets.token_hex(8)}
    granted = api("POST", "/api/v1/seats", body=mine)
    check("ann checks out a seat", granted.status == 201, granted)
    for installation in (None, "a guessed installation secret"):
        forged = {k: v for k, v in mine.items() if k != "installation"}
        forged["process"] = "evil.exe"
        if installation:
            forged["installation"] = installation
        a = api("POST", "/api/v1/seats", body=forged)
        check(f"replaying her user and host ({'a wrong' if installation else 'no'} installation "
              "secret) is refused 409 with a clear problem",
              a.status == 409 and a.problem_type() == "/problems/conflict"
              and "Only the installation that took it" in a.body.get("detail", ""), a)
    beat = api("POST", f"/api/v1/seats/{granted.body['seat_id']}/heartbeat",
               body={"lease_token": granted.body["lease_token"]})
    check("... and ann's seat and lease token are untouched", beat.status == 200, beat)
    release = api("POST", f"/api/v1/seats/{granted.body['seat_id']}/release",
                  body={"lease_token": granted.body["lease_token"]})
    check("ann releases it", release.status == 204, release)


def cross_site(admin, rw):
    print("== 3. requests from another site")
    before = api("GET", "/api/v1/clients", rw).body
    evil = {"Origin": "https://evil.example"}
    a = admin.rpc("create_client", {"client[name]": "Forged", "client[contact_email]": "",
                                    "client[notes]": ""}, extra=evil)
    check("a form posted to the portal from another site is refused 403",
          a.status == 403 and error_of(a) == "Refused" and "another site" in json.dumps(a.body), a)
    a = admin.rpc("create_client", {"client[name]": "Forged", "client[contact_email]": "",
                                    "client[notes]": ""}, extra={"Sec-Fetch-Site": "cross-site"})
    check("... and so is one marked cross-site by the browser", a.status == 403, a)
    check("... and nothing changed", api("GET", "/api/v1/clients", rw).body == before)
    victim = Portal()
    a = victim.rpc("sign_in", {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}, extra=evil)
    check("login CSRF (a sign-in posted from another site) is refused and sets no cookie",
          a.status == 403 and "Set-Cookie" not in a.headers and len(victim.jar) == 0, a)
    a = api("POST", "/api/v1/clients", rw, {"name": "Forged"}, headers=evil)
    check("an API write from another site's page is refused with a problem",
          a.status == 403 and a.problem_type() == "/problems/forbidden", a)


def lockout(victim_email, victim_password):
    print("== 4. locking a user out from another address")
    attacker = Portal(address="203.0.113.66")
    answers = [attacker.sign_in(victim_email, f"guess {i}") for i in range(8)]
    check("the attacker's guesses end in 429 with Retry-After",
          answers[-1].status == 429 and answers[-1].headers.get("Retry-After"), answers[-1])
    a = attacker.sign_in(victim_email, victim_password)
    check("... even the right password from the attacker's address waits", a.status == 429, a)
    answers = [attacker.sign_in(victim_email, f"guess {i}") for i in range(150)]
    check("150 more guesses from there are all refused without being checked",
          all(x.status == 429 for x in answers), {x.status for x in answers})
    user = Portal(address="198.51.100.7")
    a = user.sign_in(victim_email, victim_password)
    check("the user signs in from their own address meanwhile (the guesses added up to no "
          "account-wide lock)", a.status == 200, a)
    six = Portal(address="2001:db8:77:1::1")
    for i in range(6):
        six.sign_in(victim_email, f"guess {i}")
    hop = Portal(address="2001:db8:77:1:ffff::2")
    a = hop.sign_in(victim_email, victim_password)
    check("hopping to another address of the same IPv6 /64 does not reset the count",
          a.status == 429, a)


def token_after_reset(admin, victim_id, victim_email, victim_password):
    print("== 5. an API token after its owner's password reset")
    victim = Portal(address="198.51.100.8")
    victim.sign_in(victim_email, victim_password)
    a = victim.rpc("create_api_token", {"name": "made by whoever knew the password",
                                        "access": "write"})
    check("a token is not made without the password", a.status == 422, a)
    a = victim.rpc("create_api_token", {"name": "made by whoever knew the password",
                                        "access": "write", "password": victim_password})
    token = a.body["secret"] if a.status == 200 else None
    check("with it, one is", token is not None and api("GET", "/api/v1/me", token).status == 200, a)
    a = admin.rpc("reset_user_password", {"user_id": victim_id, "password": "reset password 456"})
    check("an administrator resets the user's password", a.status == 200, a)
    a = api("GET", "/api/v1/me", token)
    check("the token made with the old password is refused (401 problem)",
          a.status == 401 and a.problem_type() == "/problems/unauthorized", a)
    return "reset password 456"


def read_only_drain(admin, rw, pool_id):
    print("== 6. draining a pool with what a read-only token reads")
    ro = admin.rpc("create_api_token", {"name": "dashboard", "access": "read",
                                        "password": ADMIN_PASSWORD}).body["secret"]
    pools = api("GET", "/api/v1/pools", ro)
    seen = [p for p in pools.body if p["id"] == pool_id] if pools.status == 200 else []
    key = seen[0]["access_key"] if seen else ""
    check("a read-only token sees no usable pool key (only its head: nobody sees it whole again)",
          key.endswith("…") and len(key) <= 10, key)
    before = api("GET", "/api/v1/usage", rw).body
    grabs = [api("POST", "/api/v1/seats", body={"pool_key": key, "feature": "CAD",
                                                "user": f"drain{i}", "host": "evil",
                                                "process": "x"}) for i in range(3)]
    check("checking out with what it saw is refused (4xx problem)",
          all(400 <= g.status < 500 and g.problem_type() for g in grabs), grabs[0])
    check("... and not one seat was taken", api("GET", "/api/v1/usage", rw).body == before)
    serials = api("GET", "/api/v1/serials", ro)
    check("serial numbers are masked for it",
          serials.status == 200 and serials.body
          and all(s["serial"].endswith("…") for s in serials.body), serials)
    batch = serials.body[0]["batch_id"] if serials.status == 200 and serials.body else 0
    a = api("GET", f"/api/v1/serial-batches/{batch}/serials.csv", ro)
    check("... and their CSV export needs a read-write token",
          a.status == 403 and a.problem_type() == "/problems/read-only-token", a)
    a = api("GET", "/api/v1/serials?search=A", ro)
    check("... and it cannot spell one out by searching",
          a.status == 403 and a.problem_type() == "/problems/read-only-token", a)
    acts = api("GET", "/api/v1/activations", ro)
    check("licence keys and fingerprints are masked for it",
          acts.status == 200 and acts.body and all(x["licence_key"].endswith("…")
                                     and x["activation"]["fingerprint"].endswith("…")
                                     for x in acts.body), acts)


def checkout_flood():
    print("== 2b. a flood of checkouts (guessing pool keys) from one address")
    addr = {"X-Forwarded-For": "192.0.2.77"}
    answers = [api("POST", "/api/v1/seats", body={"pool_key": f"POOL-GUESS-{i}", "feature": "CAD",
                                                  "user": "g", "host": "g", "process": "p"},
                   headers=addr) for i in range(305)]
    refused = [a for a in answers if a.status == 429]
    check(f"past 300 misses a minute the guesses are refused 429 ({len(refused)} of 305) with "
          "Retry-After",
          len(refused) >= 5 and all(a.headers.get("Retry-After") and
                                    a.problem_type() == "/problems/throttled" for a in refused),
          {a.status for a in answers})
    other = api("POST", "/api/v1/seats", body={"pool_key": "POOL-GUESS-X", "feature": "CAD",
                                               "user": "g", "host": "g", "process": "p"},
                headers={"X-Forwarded-For": "192.0.2.78"})
    check("another address is not held up by it", other.status == 422, other)


def nul_in_paths(rw):
    print("== 7. NUL characters and invalid UTF-8")
    for method, path in [("GET", "/api/v1/serials/%00"), ("GET", "/api/v1/serials/%FF%FE"),
                         ("GET", "/api/v1/pools/1/usage/%00/x"),
                         ("GET", "/api/v1/pools/1/usage/Vendor/%C3%28"),
                         ("DELETE", "/api/v1/pools/1/bundles/%00/x"),
                         ("GET", "/api/v1/licences/%00")]:
        a = api(method, path, rw)
        check(f"{method} {path} is refused with a problem ({a.status})",
              400 <= a.status < 500 and a.problem_type(), a)
    for path in ["/setup/%00", "/setup/%FF", "/admin/clients/%00"]:
        a = request("GET", path, headers={"Accept": "text/html"})
        check(f"GET {path} is no server error ({a.status})", a.status < 500, a)
    a = api("POST", "/api/v1/seats", body={"pool_key": "x", "feature": "CAD", "user": "a\u0000b",
                                           "host": "h", "process": "p"})
    check(f"a NUL inside a JSON field is refused ({a.status})", 400 <= a.status < 500, a)
    a = Portal().rpc("sign_in", {"email": "a\u0000@x.test", "password": "p"})
    check(f"a NUL inside a form field is refused ({a.status})", 400 <= a.status < 500, a)


def pages(admin, rw, batch):
    print("== 8. pages: oversized pages, forged cursors, and secrets on every page")
    for path in ["/api/v1/serials?limit=1000000", "/api/v1/activations?limit=0",
                 "/api/v1/audit?limit=-1"]:
        a = api("GET", path, rw)
        check(f"{path} is refused 422 naming the limit",
              a.status == 422 and a.body.get("field") == "limit", a)
    forged = {"garbage": "%21%21", "wrong shape": "eyJpZCI6MX0",  # {"id":1}
              "overlong": "A" * 5000}
    for what, cursor in forged.items():
        a = api("GET", f"/api/v1/orders?after={cursor}", rw)
        check(f"a cursor ({what}) is refused 422 naming it",
              a.status == 422 and a.body.get("field") == "after", a)
    ro = admin.rpc("create_api_token", {"name": "pager", "access": "read",
                                        "password": ADMIN_PASSWORD}).body["secret"]
    whole = api("GET", f"/api/v1/serials?batch_id={batch}&limit=500", ro)
    walked, path, hops = [], f"/api/v1/serials?batch_id={batch}&limit=1", 0
    while path and hops < 50:
        a = api("GET", path, ro)
        walked += a.body if a.status == 200 else []
        path, hops = next_page(a.headers.get("Link")), hops + 1
    check(f"walking a batch's serials one per page ({hops} pages) gives what one page gives",
          whole.status == 200 and walked == whole.body and hops == len(whole.body), hops)
    check("... every page masked for a read-only token",
          walked and all(s["serial"].endswith("…") for s in walked), walked[:1])


def main():
    run = secrets.token_hex(3).upper()
    admin = Portal()
    a = admin.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)
    if a.status != 200:
        raise SystemExit(f"cannot sign in as {ADMIN_EMAIL}: {a}")
    rw = admin.rpc("create_api_token", {"name": f"attacks {run}", "access": "write",
                                        "password": ADMIN_PASSWORD}).body["secret"]
    client = api("POST", "/api/v1/clients", rw, {"name": f"Attacked {run}"}).body
    victim_email, victim_password = f"victim-{run.lower()}@attack.test", "victim password 123"
    victim = admin.rpc("create_client_user", {"client_id": client["id"], "name": "Victim",
                                              "email": victim_email, "password": victim_password})
    pool = api("POST", "/api/v1/pools", rw, {"client_id": client["id"]}).body
    key = api("POST", f"/api/v1/pools/{pool['id']}/keys", rw, {
        "editor": "Vendor", "feature": "CAD", "model": "ConcurrentUser", "quantity": 2})
    if key.status != 201:
        raise SystemExit(f"cannot prepare a pool: {key}")
    # Something for a reader to see: a licence active on a machine, and serial numbers.
    product = api("POST", "/api/v1/products", rw,
                  product_body(f"ATK-{run}", "Attacked product")).body
    order = api("POST", "/api/v1/orders", rw, {"client_id": client["id"],
                                               "product_id": product["id"], "quantity": 1}).body
    licence = api("GET", f"/api/v1/orders/{order['id']}/licences", rw).body[0]
    act = api("POST", "/api/v1/activations", None, {
        "licence_key": licence["key"], "fingerprint": "ab" * 32, "hostname": "attacked-ws"})
    batch = api("POST", "/api/v1/serial-batches", rw, {"product_id": product["id"], "count": 2})
    if act.status != 201 or batch.status != 201:
        raise SystemExit(f"cannot prepare licences and serials: {act} {batch}")

    hashing_burst()
    seat_takeover(rw, pool["access_key"])
    checkout_flood()
    cross_site(admin, rw)
    lockout(victim_email, victim_password)
    token_after_reset(admin, victim.body["id"], victim_email, victim_password)
    read_only_drain(admin, rw, pool["id"])
    nul_in_paths(rw)
    pages(admin, rw, batch.body["id"])

    check("no request got a 5xx", not server_errors, "\n    ".join(server_errors))
    print(f"attacks: {tally.passed} refused as they should be, {tally.failed} failed")
    sys.exit(1 if tally.failed else 0)


if __name__ == "__main__":
    main()
