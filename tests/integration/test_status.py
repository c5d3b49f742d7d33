"""GET /status through the real binary: the admin token required (Bearer, or a browser's Basic login),
the whole server's figures on one HTML page, and that page as headless Chromium (Debian's `chromium`)
renders it, checked against /metrics, with a screenshot saved under the build directory."""
import base64
import http.client
import os
import shutil
import subprocess
import tempfile
import unittest
from html.parser import HTMLParser

from harness import BIN, http_get, http_workers, scoreboard, wait_until
from test_gateway import ADMIN_TOKEN, CLIENT_KEY, PROVIDER_KEY, GatewayTest
from test_metrics import metrics, value

ODD_MODEL = "<b>odd</b> & 'model'"   # gateway_conf quotes it with " as is
CHROMIUM_TIMEOUT = 90   # seconds: a cold start on a loaded 2-core machine
ARTIFACTS = os.path.join(os.path.dirname(os.path.abspath(BIN)), "test-artifacts")


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def basic(user, password):
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


class Tables(HTMLParser):
    """{section heading: [rows of cell texts]} of the page's tables (first table of each section)."""

    def __init__(self):
        super().__init__()
        self.sections, self.heading, self.cell, self.row, self.in_h2 = {}, None, None, None, False

    def handle_starttag(self, tag, attrs):
        if tag == "h2":
            self.in_h2, self.heading = True, ""
        elif tag == "tr":
            self.row = []
        elif tag in ("td", "th"):
            self.cell = ""

    def handle_endtag(self, tag):
        if tag == "h2":
            self.in_h2 = False
            self.sections[self.heading] = []
        elif tag in ("td", "th") and self.row is not None:
            self.row.append(self.cell)
            self.cell = None
        elif tag == "tr" and self.heading is not None:
            self.sections[self.heading].append(self.row)
            self.row = None

    def handle_data(self, data):
        if self.in_h2:
            self.heading += data
        elif self.cell is not None:
            self.cell += data


def tables(html):
    p = Tables()
    p.feed(html)
    return p.sections


def rows(sections, heading):
    """The rows of a section's table as dicts by column heading."""
    head, *body = sections[heading]
    return [dict(zip(head, r)) for r in body]


class StatusTest(GatewayTest):
    def start_gateway(self, workers=2):
        return self.start(workers=workers, providers={"alpha": []}, models={ODD_MODEL: [("alpha", "m1")]})


class Access(StatusTest):
    def test_the_admin_token_is_required_as_bearer_or_basic_password(self):
        s = self.start_gateway()
        c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=5)
        c.request("GET", "/status")
        r = c.getresponse()
        body = r.read()
        c.close()
        self.assertEqual(r.status, 401, body)
        self.assertIn(b"admin token required", body)
        challenges = [v for k, v in r.getheaders() if k.lower() == "www-authenticate"]
        self.assertIn("Bearer", challenges)   # as the other admin endpoints
        self.assertIn('Basic realm="agente-hibrido admin", charset="UTF-8"', challenges)   # a browser's prompt
        self.assertEqual(http_get(s.port, "/status", headers=bearer("wrong"))[0], 403)
        self.assertEqual(http_get(s.port, "/status", headers=bearer(CLIENT_KEY))[0], 403)   # a client is no admin
        self.assertEqual(http_get(s.port, "/status", headers=basic("admin", "wrong"))[0], 403)
        self.assertEqual(http_get(s.port, "/status", headers=basic("anyone", ADMIN_TOKEN))[0], 200)
        status, h, body = http_get(s.port, "/status", headers=bearer(ADMIN_TOKEN))
        self.assertEqual(status, 200, body)
        self.assertEqual(h["content-type"], "text/html; charset=utf-8")
        self.assertIn("default-src 'none'", h["content-security-policy"])
        self.assertEqual(h["cache-control"], "no-store")

    def test_the_page_shows_the_whole_server_escaped_and_no_secret(self):
        s = self.start_gateway()
        # The server answers once one worker is ready; the page is read once both are (2 is
        # WorkerState::ready), or it shows the other still booting on a loaded machine.
        self.assertTrue(wait_until(lambda: [st for st, _ in scoreboard(s.pid).values()] == [2, 2]), scoreboard(s.pid))
        for _ in range(20):
            self.assertEqual(http_get(s.port, "/health")[0], 200)
        status, _, body = http_get(s.port, "/status", headers=bearer(ADMIN_TOKEN))
        self.assertEqual(status, 200, body)
        html = body.decode()
        page = tables(html)
        workers = rows(page, "HTTP workers")
        self.assertEqual(sorted(int(w["pid"]) for w in workers), sorted(http_workers(s)))
        self.assertTrue(all(w["generation"] == "1" and w["state"] == "ready" for w in workers), workers)
        self.assertGreaterEqual(sum(int(w["requests"]) for w in workers), 20)
        self.assertEqual(rows(page, "Server")[0]["HTTP workers"], "2")
        self.assertEqual(rows(page, "Streams")[0], {"active": "0", "limit": "10"})
        breaker = rows(page, "Circuit breakers")[0]
        self.assertEqual((breaker["provider"], breaker["state"], breaker["failures"]), ("alpha", "closed", "0"))
        self.assertIn('data-path="/system/circuit-breaker/reset/" data-arg="alpha"', html)
        self.assertEqual(rows(page, "Models")[0]["model"], ODD_MODEL)   # shown as text, not markup
        self.assertIn("&lt;b&gt;odd&lt;/b&gt; &amp; &#39;model&#39;", html)
        self.assertNotIn("<b>odd", html)
        for secret in (ADMIN_TOKEN, PROVIDER_KEY, CLIENT_KEY):
            self.assertNotIn(secret, html)
        self.assertIn("Dirty workers", page)


def chromium(*args):
    profile = tempfile.mkdtemp(prefix="agente-chromium-")
    try:
        return subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                               "--disable-extensions", f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=CHROMIUM_TIMEOUT)
    finally:
        shutil.rmtree(profile, ignore_errors=True)


@unittest.skipUnless(shutil.which("chromium"), "Debian's chromium is not installed (scripts/install-deps lists it)")
class InChromium(StatusTest):
    def test_chromium_renders_what_metrics_says_and_saves_a_screenshot(self):
        s = self.start_gateway()
        for _ in range(30):
            self.assertEqual(http_get(s.port, "/health")[0], 200)
        before = metrics(s.port)
        served = value(before, "agente_http_requests_total")
        # The browser's own Basic login: credentials in the address of a top-level page.
        url = f"http://admin:{ADMIN_TOKEN}@127.0.0.1:{s.port}/status"
        r = chromium("--dump-dom", url)
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        page = tables(r.stdout)
        self.assertIn("HTTP workers", page, r.stdout[:2000])
        workers = rows(page, "HTTP workers")
        self.assertEqual(len(workers), value(before, "agente_workers", pool="http"))
        # Requests since boot, summed over the slots: what /metrics counted, plus the scrape itself
        # and what the browser asked meanwhile (a first try without credentials, a favicon).
        shown = sum(int(w["requests"]) for w in workers)
        self.assertGreaterEqual(shown, served)
        self.assertLessEqual(shown, served + 6)
        self.assertEqual(int(rows(page, "Streams")[0]["limit"]), value(before, "agente_streams_limit"))
        state = rows(page, "Circuit breakers")[0]["state"]
        self.assertEqual(value(before, "agente_upstream_breaker_state", provider="alpha", state=state), 1)

        os.makedirs(ARTIFACTS, exist_ok=True)
        shot = os.path.join(ARTIFACTS, "status.png")
        if os.path.exists(shot):
            os.unlink(shot)
        r = chromium(f"--screenshot={shot}", "--window-size=412,915", "--hide-scrollbars", url)   # a phone's width
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        with open(shot, "rb") as f:
            png = f.read()
        self.assertTrue(png.startswith(b"\x89PNG\r\n\x1a\n"))
        self.assertGreater(len(png), 5000)


if __name__ == "__main__":
    unittest.main()
