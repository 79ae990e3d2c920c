# A Docker token service for the e2e tests, on 127.0.0.1: the registry (distribution, `auth:
# token:`) sends clients here, and trusts the JWTs it signs (RS256, with the key whose
# self-signed certificate is the registry's rootcertbundle; the certificate rides in `x5c`).
#
#   GET  /token?scope=...&service=...   Basic user:password         -> {"token": JWT}
#   POST /token  grant_type=refresh_token&refresh_token=...&...     -> {"access_token": JWT}
#                grant_type=password&username=...&password=...      -> {"access_token": JWT}
#
# Every request is appended to LOG as one line: "GET basic USER", "POST refresh_token", ...
# Usage: token_server.py PORT KEY.pem CERT.pem USER PASSWORD REFRESH_TOKEN LOG
import base64
import json
import subprocess
import sys
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, KEY, CERT, USER, PASSWORD, REFRESH, LOG = sys.argv[1:8]
ISSUER, SERVICE = "e2e-issuer", "e2e-registry"


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def certificate_base64():
    pem = open(CERT).read()
    body = "".join(line for line in pem.splitlines() if "-----" not in line)
    return body


def token(scope):
    access = []
    if scope:
        kind, name, actions = scope.split(":")
        access.append({"type": kind, "name": name, "actions": actions.split(",")})
    now = int(time.time())
    header = {"typ": "JWT", "alg": "RS256", "x5c": [certificate_base64()]}
    claims = {"iss": ISSUER, "sub": USER, "aud": SERVICE, "exp": now + 600, "nbf": now - 10,
              "iat": now, "jti": str(time.time_ns()), "access": access}
    signing_input = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
    signature = subprocess.run(["openssl", "dgst", "-sha256", "-sign", KEY], input=signing_input.encode(),
                               capture_output=True, check=True).stdout
    return signing_input + "." + b64url(signature)


def log(line):
    with open(LOG, "a") as f:
        f.write(line + "\n")


class Handler(BaseHTTPRequestHandler):
    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        query = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
        auth = self.headers.get("Authorization", "")
        user = None
        if auth.startswith("Basic "):
            user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
            if (user, password) != (USER, PASSWORD):
                log(f"GET basic {user} refused")
                return self.answer(401, {"details": "wrong user or password"})
        log(f"GET basic {user}" if user else "GET anonymous")
        if not user:
            return self.answer(401, {"details": "credentials needed"})
        self.answer(200, {"token": token(query.get("scope", [""])[0])})

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        form = urllib.parse.parse_qs(self.rfile.read(length).decode())
        field = lambda name: form.get(name, [""])[0]
        grant = field("grant_type")
        if grant == "refresh_token":
            fine = field("refresh_token") == REFRESH
        elif grant == "password":
            fine = (field("username"), field("password")) == (USER, PASSWORD)
        else:
            fine = False
        log(f"POST {grant} client_id={field('client_id')} service={field('service')}" + ("" if fine else " refused"))
        if not fine:
            return self.answer(401, {"error": "invalid_grant"})
        self.answer(200, {"access_token": token(field("scope")), "expires_in": 600})

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", int(PORT)), Handler).serve_forever()
