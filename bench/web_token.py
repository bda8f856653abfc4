#!/usr/bin/env python3
"""Signs in to Lockbox's browser UI like a person would (password, then TOTP enrolment or a TOTP code)
and prints a new API token. For benchmarks and manual testing, not for production use.

    bench/web_token.py https://127.0.0.1:8443 USER PASSWORD [SCOPES] [CAFILE]

Enrols a TOTP authenticator on first sign-in (the secret is printed to stderr so a later run can sign
in again: pass it as LOCKBOX_TOTP_SECRET).
"""
import base64, hashlib, hmac, http.cookiejar, json, os, re, ssl, struct, sys, time, urllib.parse, urllib.request


def totp(secret_b32, at=None):
    key = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
    step = int((at or time.time()) // 30)
    mac = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    off = mac[-1] & 0x0F
    return "%06d" % ((struct.unpack(">I", mac[off:off + 4])[0] & 0x7FFFFFFF) % 1_000_000)


def main():
    base, user, password = sys.argv[1:4]
    scopes = sys.argv[4] if len(sys.argv) > 4 else "read,write"
    cafile = sys.argv[5] if len(sys.argv) > 5 else None
    ctx = ssl.create_default_context(cafile=cafile) if cafile else ssl._create_unverified_context()
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=ctx),
                                         urllib.request.HTTPCookieProcessor(jar))

    def req(path, data=None, headers=None):
        body = urllib.parse.urlencode(data).encode() if isinstance(data, dict) else data
        r = urllib.request.Request(base + path, data=body, headers=headers or {})
        with opener.open(r) as resp:
            return resp.geturl(), resp.read().decode()

    url, page = req("/login", {"user": user, "password": password})
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    if url.endswith("/login/enroll"):
        secret = re.search(r'id="totp-secret"[^>]*>([^<]+)<', page).group(1).replace(" ", "")
        print("TOTP secret: " + secret, file=sys.stderr)
        url, page = req("/login/enroll", {"csrf": csrf, "code": totp(secret)})
    elif url.endswith("/login/totp"):
        secret = os.environ["LOCKBOX_TOTP_SECRET"]
        url, page = req("/login/totp", {"csrf": csrf, "code": totp(secret, time.time() + 30)})
    else:
        sys.exit("sign-in refused: " + url)
    url, page = req("/account")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    _, out = req("/api/v1/tokens", json.dumps({"name": "bench", "scopes": scopes, "days": 1}).encode(),
                 {"Content-Type": "application/json", "X-CSRF-Token": csrf})
    print(json.loads(out)["token"])


if __name__ == "__main__":
    main()
