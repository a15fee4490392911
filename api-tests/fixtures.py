"""What the API checks share: the tally of their checks, and what they create more than once."""


class Tally:
    """Checks passed and failed, one printed line each."""

    def __init__(self):
        self.passed, self.failed = 0, 0

    def check(self, what, ok, detail=""):
        if ok:
            self.passed += 1
            print(f"  ok   {what}")
        else:
            self.failed += 1
            print(f"  FAIL {what} {detail}")


def next_page(link):
    """The path of the next page a list's `Link` header names, or None."""
    link = link or ""
    if not (link.startswith("<") and link.endswith('>; rel="next"')):
        return None
    return link[1:-len('>; rel="next"')]


def product_body(code, name):
    """A product of editor Vendor, feature print, one seat, three activations, no borrowing."""
    return {
        "code": code, "name": name, "editor": "Vendor",
        "release_number": 1, "release_date": None,
        "features": [{"code": "print", "name": "Printing"}],
        "default_features": ["print"], "default_counters": {"seats": 1},
        "settings": {
            "limited": False, "validity_days": None, "fixed_start": None, "fixed_end": None,
            "expire_day_of_month": None, "end_user_removal": True, "max_activations": 3,
            "validate_every_days": 7, "licences_per_serial": 1, "heartbeat_secs": 120,
            "borrowing_allowed": False, "max_borrow_days": 30,
        },
    }
