"""Every operation of the control plane's OpenAPI document, called with tenant acme's admin
token on tenant globex's objects: each must be refused (404, or 403/422 before any lookup)
and globex's application must be unchanged afterwards. Prints one line per operation and a
summary; exits non-zero on any failure."""

import json
import sys
import urllib.error
import urllib.request

base, token, admin = sys.argv[1], sys.argv[2], sys.argv[3]
params = {"tenant": "globex", "app": "globex-secret", "id": sys.argv[4]}


def call(method, path, tok, body=None):
    req = urllib.request.Request(
        base + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={
            "authorization": f"Bearer {tok}",
            "content-type": "application/json",
            "if-match": '"1"',
        },
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


doc = json.loads(call("GET", "/openapi.json", token)[1])
before = call("GET", "/v1/tenants/globex/applications/globex-secret", admin)[1]
failures = 0
tried = 0
for path, ops in sorted(doc["paths"].items()):
    if "{tenant}" not in path:
        continue
    concrete = path.format(**params)
    for method in sorted(ops):
        tried += 1
        status, body = call(method.upper(), concrete, token, {} if method != "get" else None)
        ok = status in (403, 404, 422) and b"globex-secret" not in body
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {method.upper():6} {concrete} -> {status}")
after = call("GET", "/v1/tenants/globex/applications/globex-secret", admin)[1]
if before != after:
    failures += 1
    print("FAIL globex's application changed")
print(f"cross-tenant sweep: {tried} operations on globex's objects with acme's token, {failures} failures")
sys.exit(1 if failures else 0)
