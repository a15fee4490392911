#!/usr/bin/env python3
"""Drives the management API end to end from outside the Rust code, with the standard library
only: tokens are made in the portal (its /rpc endpoints, as the browser does), then used as
bearer tokens on /api/v1.

    manage_api.py BASE_URL ADMIN_EMAIL ADMIN_PASSWORD [--new-token]

Prints one line per check and a summary; exits non-zero if any check fails.
"""

import http.cookiejar
import json
import secrets
import sys
import urllib.error
import urllib.parse
import urllib.request

from fixtures import Tally, product_body

BASE, ADMIN_EMAIL, ADMIN_PASSWORD = sys.argv[1].rstrip("/"), sys.argv[2], sys.argv[3]
tally = Tally()
check = tally.check


class Portal:
    """A signed-in portal session (cookies), calling server functions with form posts."""

    def __init__(self, email, password):
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )
        self.password = password
        status, body = self.rpc("sign_in", {"email": email, "password": password})
        if status != 200:
            raise SystemExit(f"cannot sign in as {email}: {status} {body}")

    def rpc(self, name, form):
        data = urllib.parse.urlencode(form).encode()
        req = urllib.request.Request(f"{BASE}/rpc/{name}", data=data, method="POST")
        try:
            with self.opener.open(req) as res:
                return res.status, json.loads(res.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def token(self, name, access):
        # Making a token asks for the owner's password again.
        form = {"name": name, "access": access, "password": self.password}
        status, body = self.rpc("create_api_token", form)
        assert status == 200, (status, body)
        return body["token"]["id"], body["secret"]


def api(method, path, token=None, body=None):
    headers = {"Accept": "application/json"}
    data = None
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if body is not None:
        headers["Content-Type"] = "application/json"
        data = json.dumps(body).encode()
    req = urllib.request.Request(f"{BASE}{path}", data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req) as res:
            raw = res.read()
            return res.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw)
        except ValueError:
            return e.code, raw.decode()


def main():
    run = secrets.token_hex(3).upper()
    admin = Portal(ADMIN_EMAIL, ADMIN_PASSWORD)
    _, rw = admin.token(f"automation {run}", "write")
    _, ro = admin.token(f"dashboard {run}", "read")

    # product -> client -> order -> licence -> activation list
    product = product_body(f"PY-{run}", "Python-made product")
    status, p = api("POST", "/api/v1/products", rw, product)
    check("create a product", status == 201, (status, p))
    status, c = api("POST", "/api/v1/clients", rw, {"name": f"Python Client {run}"})
    check("create a client", status == 201, (status, c))
    status, o = api("POST", "/api/v1/orders", rw,
                    {"client_id": c["id"], "product_id": p["id"], "quantity": 2, "reference": "PO-PY"})
    check("create an order of 2 licences", status == 201 and o["quantity"] == 2, (status, o))
    status, lics = api("GET", f"/api/v1/orders/{o['id']}/licences", rw)
    check("read the order's licences", status == 200 and len(lics) == 2, (status, lics))
    status, act = api("POST", "/api/v1/activations", None, {
        "licence_key": lics[0]["key"], "fingerprint": "ab" * 32, "hostname": f"py-ws-{run}"})
    check("activate a licence as an application", status == 201, (status, act))
    status, acts = api("GET", "/api/v1/activations", ro)
    mine = [a for a in acts if a["activation"]["hostname"] == f"py-ws-{run}"] if status == 200 else []
    check("read the activation list (read-only token)", len(mine) == 1, (status, acts))

    # a read-only token is refused a write, and nothing is written
    status, body = api("POST", "/api/v1/clients", ro, {"name": f"Refused {run}"})
    check("a read-only token is refused a write (403)",
          status == 403 and body.get("type") == "/problems/read-only-token", (status, body))
    _, clients = api("GET", "/api/v1/clients", rw)
    check("... and nothing was written", all(x["name"] != f"Refused {run}" for x in clients))

    # a revoked token is refused
    revoked_id, revoked = admin.token(f"soon revoked {run}", "write")
    check("a fresh token works", api("GET", "/api/v1/me", revoked)[0] == 200)
    status, _ = admin.rpc("revoke_api_token", {"id": revoked_id})
    check("revoke it in the portal", status == 200)
    status, body = api("GET", "/api/v1/me", revoked)
    check("a revoked token is refused (401)", status == 401, (status, body))
    check("no token at all is refused (401)", api("GET", "/api/v1/products")[0] == 401)

    # a client user's token reaches its own client only
    status, other = api("POST", "/api/v1/clients", rw, {"name": f"Other Client {run}"})
    check("create a second client", status == 201, (status, other))
    email = f"py-{run.lower()}@client.test"
    status, body = admin.rpc("create_client_user", {
        "client_id": c["id"], "name": "Py User", "email": email, "password": "python password 123"})
    check("create a client user", status == 200, (status, body))
    client = Portal(email, "python password 123")
    _, scoped = client.token(f"client scripts {run}", "write")
    status, own = api("GET", f"/api/v1/clients/{c['id']}", scoped)
    check("a client-scoped token reads its own client", status == 200, (status, own))
    status, body = api("GET", f"/api/v1/clients/{other['id']}", scoped)
    check("a client-scoped token cannot read another client (403)", status == 403, (status, body))
    status, orders = api("GET", "/api/v1/orders", scoped)
    check("a client-scoped token lists only its own orders",
          status == 200 and {x["client_id"] for x in orders} == {c["id"]}, (status, orders))
    status, body = api("GET", f"/api/v1/orders?client_id={other['id']}", scoped)
    check("... and is refused another client's orders (403)", status == 403, (status, body))

    print(f"management API checks: {tally.passed} passed, {tally.failed} failed")
    return 1 if tally.failed else 0


if __name__ == "__main__":
    if len(sys.argv) > 4 and sys.argv[4] == "--new-token":
        # For the fuzzer: a fresh read-write administrator token on standard output.
        print(Portal(ADMIN_EMAIL, ADMIN_PASSWORD).token("fuzzer " + secrets.token_hex(3), "write")[1])
        sys.exit(0)
    sys.exit(main())
