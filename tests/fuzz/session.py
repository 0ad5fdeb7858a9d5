"""Signs a fresh user in on a running Gatehouse and gives it an org, so the
fuzz run reaches handlers past authentication.

Usage: session.py BASE_URL. Registers, reads the verification token from the
development outbox (GET /v1/dev/outbox), verifies, logs in and creates an
org; prints `TOKEN ORG_ID` on one line. Standard library only.
"""

import json
import re
import sys
import urllib.error
import urllib.request

EMAIL = "fuzz@example.test"
PASSWORD = "violet-tractor-umbrella"


def call(base, method, path, body=None, token=None):
    headers = {}
    data = None
    if body is not None:
        headers["content-type"] = "application/json"
        data = json.dumps(body).encode()
    if token:
        headers["authorization"] = f"Bearer {token}"
    req = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as res:
            return res.status, json.loads(res.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def expect(reply, status, what):
    if reply[0] != status:
        sys.exit(f"{what}: expected {status}, got {reply[0]}: {reply[1]}")
    return reply[1]


def main():
    base = sys.argv[1]
    expect(
        call(base, "POST", "/v1/auth/register",
             {"email": EMAIL, "password": PASSWORD, "display_name": "Fuzz"}),
        202, "register")
    outbox = expect(call(base, "GET", "/v1/dev/outbox"), 200, "outbox")
    mail = next((m for m in outbox["items"]
                 if m["to"] == EMAIL and m["kind"] == "verify_email"), None)
    if mail is None:
        sys.exit(f"no verification mail to {EMAIL}: {outbox}")
    found = re.search(r"gvt_[A-Za-z0-9_-]+", mail["body"])
    if found is None:
        sys.exit("no token in the verification mail")
    expect(call(base, "POST", "/v1/auth/verify-email", {"token": found.group(0)}),
           200, "verify-email")
    login = expect(call(base, "POST", "/v1/auth/login",
                        {"email": EMAIL, "password": PASSWORD}), 200, "login")
    token = login["token"]
    org = expect(call(base, "POST", "/v1/orgs", {"name": "Fuzz", "handle": "fuzz-org"}, token),
                 201, "create org")
    print(token, org["id"])


if __name__ == "__main__":
    main()
