"""Headless Chromium (Debian's ``chromium``) driven by Playwright, for the portal and console
pages of the sandbox, from the host.

- Names: ``pigsty`` and ``*.pigsty`` resolve to meta (10.10.10.10); every other name fails
  to resolve (``--host-resolver-rules``), so the browser reaches nothing but the sandbox.
- TLS: the sandbox's CA is the only one added to a throwaway NSS database under a throwaway
  HOME; nothing is accepted unverified.
- The portal's login goes in through Playwright's HTTP credentials (in memory, never on a
  command line).
Screenshots go to ``ARTIFACTS`` (tests/artifacts/, not committed) for a person to look at."""
import contextlib
import os
import shutil
import subprocess
import tempfile

from meta_http import META, ca_file, portal_login

CHROMIUM = "/usr/bin/chromium"
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ARTIFACTS = os.environ.get("PIGSTY_TEST_ARTIFACTS", os.path.join(REPO, "tests", "artifacts"))
RESOLVER_RULES = "MAP pigsty %s, MAP *.pigsty %s, MAP * ~NOTFOUND, EXCLUDE %s" % (META, META, META)


def _nss_home(root):
    """A HOME whose NSS database (Chromium's trust store on Linux) trusts the sandbox's CA."""
    db = os.path.join(root, ".pki", "nssdb")
    os.makedirs(db)
    subprocess.run(["certutil", "-N", "-d", "sql:" + db, "--empty-password"], check=True, capture_output=True)
    subprocess.run(["certutil", "-A", "-d", "sql:" + db, "-n", "pigsty-sandbox-ca", "-t", "C,,",
                    "-i", ca_file()], check=True, capture_output=True)
    return root


@contextlib.contextmanager
def browser_page(width=1400, height=1000):
    """A Playwright page in headless Chromium, logged in to the portal; closed afterwards."""
    from playwright.sync_api import sync_playwright    # pylint: disable=import-outside-toplevel
    if not os.access(CHROMIUM, os.X_OK):
        raise AssertionError("%s is missing (tests/run.sh installs Debian's chromium)" % CHROMIUM)
    home = tempfile.mkdtemp(prefix="pigsty-chromium-")
    try:
        _nss_home(home)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM, headless=True,
                args=["--no-sandbox", "--host-resolver-rules=" + RESOLVER_RULES, "--no-proxy-server",
                      "--disable-background-networking", "--disable-component-update"],
                env={"HOME": home, "PATH": os.environ.get("PATH", "/usr/bin:/bin")})
            try:
                user, password = portal_login()
                context = browser.new_context(http_credentials={"username": user, "password": password},
                                              viewport={"width": width, "height": height})
                page = context.new_page()
                page.errors = []
                page.on("pageerror", lambda exc: page.errors.append(str(exc)))
                yield page
            finally:
                browser.close()
    finally:
        shutil.rmtree(home, ignore_errors=True)


def screenshot(page, name):
    """Save a full-page screenshot as ARTIFACTS/<name>.png; returns its path."""
    os.makedirs(ARTIFACTS, exist_ok=True)
    path = os.path.join(ARTIFACTS, name + ".png")
    page.screenshot(path=path, full_page=True)
    return path
