"""A local stand-in for an SMS provider speaking Twilio's Messages API, for
the notifications end-to-end tests (Python standard library only).

POST /2010-04-01/Accounts/{AccountSid}/Messages.json takes a form of To,
From and Body with HTTP Basic credentials (the account sid and the auth
token) and answers 201 with a message resource, or Twilio's error shape:
401 (code 20003) for wrong credentials, 404 for another account, 400 (code
21604, 21603, 21602) for a missing To, From or Body. The first FAIL_FIRST
well-formed requests are answered 503, as a provider having trouble.

GET /_test/messages lists every request received, answered or not, for the
test to check. Environment: PORT (0 for a free one), ACCOUNT_SID,
AUTH_TOKEN, FAIL_FIRST. Prints "listening <port>" once it listens.
"""

import base64
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

ACCOUNT_SID = os.environ["ACCOUNT_SID"]
AUTH_TOKEN = os.environ["AUTH_TOKEN"]
LOCK = threading.Lock()
STATE = {"fail_first": int(os.environ.get("FAIL_FIRST", "0")), "received": [], "sent": 0}


def credentials_match(header):
    if not header or not header.startswith("Basic "):
        return False
    try:
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    except ValueError:
        return False
    return user == ACCOUNT_SID and password == AUTH_TOKEN


class Handler(BaseHTTPRequestHandler):
    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def error(self, status, code, message):
        self.answer(status, {"code": code, "message": message, "status": status})

    def do_GET(self):
        if self.path == "/_test/messages":
            with LOCK:
                self.answer(200, {"items": list(STATE["received"])})
        else:
            self.error(404, 20404, "The requested resource was not found")

    def do_POST(self):
        raw = self.read_body().decode("utf-8", "replace")
        form = {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}
        record = {
            "path": self.path,
            "authorized": credentials_match(self.headers.get("authorization")),
            "content_type": self.headers.get("content-type"),
            "form": form,
        }
        with LOCK:
            record["status"] = self.decide(record, form)
            STATE["received"].append(record)
            status = record["status"]
            sent = STATE["sent"]
        if status == 201:
            self.answer(201, {
                "sid": "SM%032d" % sent,
                "account_sid": ACCOUNT_SID,
                "to": form["To"],
                "from": form["From"],
                "body": form["Body"],
                "status": "queued",
            })
        elif status == 401:
            self.error(401, 20003, "Authenticate")
        elif status == 404:
            self.error(404, 20404, "The requested resource was not found")
        elif status == 415:
            self.error(400, 21601, "Expected a form body")
        elif status == 503:
            self.error(503, 20503, "Service unavailable")
        else:
            self.error(400, status, "A required parameter is missing")

    def read_body(self):
        if "chunked" in (self.headers.get("transfer-encoding") or "").lower():
            body = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return body
                body += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("content-length") or 0))

    def decide(self, record, form):
        """The status a request gets (400s carry Twilio's parameter code)."""
        if self.path != f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json":
            return 404
        if not record["authorized"]:
            return 401
        if not (record["content_type"] or "").startswith("application/x-www-form-urlencoded"):
            return 415
        for field, code in (("To", 21604), ("From", 21603), ("Body", 21602)):
            if not form.get(field):
                return code
        if STATE["fail_first"] > 0:
            STATE["fail_first"] -= 1
            return 503
        STATE["sent"] += 1
        return 201

    def log_message(self, *_):
        pass


def main():
    server = ThreadingHTTPServer(("127.0.0.1", int(os.environ.get("PORT", "0"))), Handler)
    print(f"listening {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
