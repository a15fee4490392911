#!/usr/bin/env python3
"""Reads /metrics from outside the Rust code with the Prometheus project's own text-format
parser (prometheus_client), and checks that its figures move with a checkout.

    metrics.py BASE_URL ADMIN_EMAIL ADMIN_PASSWORD METRICS_TOKEN

Prints one line per check and a summary; exits non-zero if any check fails.
"""

import secrets
import sys
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from fixtures import Tally
from manage_api import Portal, api

BASE, ADMIN_EMAIL, ADMIN_PASSWORD, METRICS_TOKEN = sys.argv[1].rstrip("/"), *sys.argv[2:5]
tally = Tally()
check = tally.check


def scrape(token=METRICS_TOKEN):
    """(status, content type, text) of GET /metrics with `token` (None: no header)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    req = urllib.request.Request(f"{BASE}/metrics", headers=headers)
    try:
        with urllib.request.urlopen(req) as res:
            return res.status, res.headers.get("Content-Type", ""), res.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read().decode()


def samples(text):
    """Every sample as {(name, frozenset(labels)): value}, parsed by prometheus_client."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(parsed, name, **labels):
    """The value of the one sample `name` whose labels include `labels` (0 if none)."""
    found = [v for (n, ls), v in parsed.items() if n == name and set(labels.items()) <= ls]
    return sum(found)


def main():
    run = secrets.token_hex(3).upper()
    admin = Portal(ADMIN_EMAIL, ADMIN_PASSWORD)
    _, rw = admin.token(f"metrics {run}", "write")
    _, c = api("POST", "/api/v1/clients", rw, {"name": f"Metrics Client {run}"})
    status, pool = api("POST", "/api/v1/pools", rw, {"client_id": c["id"], "name": f"Metrics {run}"})
    assert status == 201, (status, pool)
    feature = f"MET{run}"
    status, key = api("POST", f"/api/v1/pools/{pool['id']}/keys", rw, {
        "editor": "Vendor", "feature": feature, "model": "ConcurrentUser", "quantity": 1,
        "commercial_type": "STD",
    })
    assert status == 201, (status, key)

    status, _, body = scrape(None)
    check("without the metrics token: 401", status == 401, (status, body))
    status, _, body = scrape(rw)
    check("an API token is not the metrics token: 401", status == 401, (status, body))
    status, ctype, before_text = scrape()
    check("with it: 200 in the Prometheus text format",
          status == 200 and ctype.startswith("text/plain; version=0.0.4"), (status, ctype))
    try:
        before = samples(before_text)
        check("prometheus_client parses every line", True)
    except Exception as e:  # noqa: BLE001 - the parser's refusal is the finding
        check("prometheus_client parses every line", False, repr(e))
        return 1
    labels = {"pool_id": str(pool["id"]), "feature": feature}
    check("the new feature: 0 of 1 in use",
          value(before, "licentia_seats_in_use", **labels) == 0
          and value(before, "licentia_seats_count", **labels) == 1)
    for name in ["licentia_db_connections_max", "licentia_uptime_seconds"]:
        check(f"{name} is there", any(n == name for n, _ in before), name)

    # A checkout, and a second one refused (one seat).
    seat = {"pool_key": pool["access_key"], "feature": feature, "user": "ann", "host": "ws-1",
            "process": "cad.exe"}
    status, grant = api("POST", "/api/v1/seats", None, seat)
    check("a checkout is granted", status == 201, (status, grant))
    status, refused = api("POST", "/api/v1/seats", None, {**seat, "user": "bob", "host": "ws-2"})
    check("a second is refused (403)", status == 403, (status, refused))
    after = samples(scrape()[2])
    check("in use moved to 1", value(after, "licentia_seats_in_use", **labels) == 1)
    check("the refusal is counted for the feature",
          value(after, "licentia_refusals_total", **labels)
          == value(before, "licentia_refusals_total", **labels) + 1)
    for outcome in ["ok", "refused"]:
        moved = (value(after, "licentia_operations_total", operation="checkout", outcome=outcome)
                 - value(before, "licentia_operations_total", operation="checkout", outcome=outcome))
        check(f"checkouts ({outcome}) moved by 1", moved == 1, moved)
    route = {"route": "/api/v1/seats", "method": "POST"}
    requests = value(after, "licentia_http_requests_total", status="201", **route)
    check("HTTP requests by route and status", requests >= 1, requests)
    count = value(after, "licentia_http_request_duration_seconds_count", **route)
    inf = value(after, "licentia_http_request_duration_seconds_bucket", le="+Inf", **route)
    check("the latency histogram counts both checkouts, +Inf equal to the count",
          count >= 2 and inf == count, (count, inf))
    status, _ = api("POST", f"/api/v1/seats/{grant['seat_id']}/release", None,
                    {"lease_token": grant["lease_token"]})
    check("the release is answered 204", status == 204, status)
    final = samples(scrape()[2])
    check("in use back to 0", value(final, "licentia_seats_in_use", **labels) == 0)
    check("the release is counted",
          value(final, "licentia_operations_total", operation="release", outcome="ok") >= 1)

    print(f"metrics checks: {tally.passed} passed, {tally.failed} failed")
    return 1 if tally.failed else 0


if __name__ == "__main__":
    sys.exit(main())
