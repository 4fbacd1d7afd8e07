"""Each report page in a real headless Chromium: it renders, decodes every image, makes no request.

How: the page is copied beside the test with a small checker script appended (the report itself has no
JavaScript); Chromium loads it from file:// with every host name resolving to nothing, and
``--dump-dom`` returns the DOM after the load event, where the script has written what it saw: images
present and decoded, resource requests made (data: URIs make none), page width against the viewport
(phone readability). A screenshot at phone width is saved under the test's tmp dir. A negative control
proves the check notices an external image.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
if CHROMIUM is None:
    pytest.skip("headless Chromium not installed (CI installs Debian's chromium via .ci/run)",
                allow_module_level=True)

PHONE_WIDTH = 412
CHECKER = """<script>
window.addEventListener("load", function () {
  var imgs = Array.prototype.slice.call(document.images);
  var result = {
    images: imgs.length,
    decoded: imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length,
    resources: performance.getEntriesByType("resource").map(function (e) { return e.name; }),
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
    headline: (document.getElementById("headline") || {}).textContent || null
  };
  var pre = document.createElement("pre");
  pre.id = "browser-check";
  pre.textContent = JSON.stringify(result);
  document.body.appendChild(pre);
});
</script>"""


def chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp / 'profile'}",
             # Any host name resolves to nothing: an external request would fail, never leave the machine.
             "--host-resolver-rules=MAP * ~NOTFOUND",
             f"--window-size={PHONE_WIDTH},2400", "--hide-scrollbars", "--virtual-time-budget=5000"]
    return subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=90)


def browser_check(page: Path, tmp: Path) -> dict:
    """Load a copy of ``page`` with the checker script; return what the script saw."""
    probe = tmp / f"probe-{page.parent.name}.html"
    probe.write_text(page.read_text(encoding="utf-8").replace("</body>", CHECKER + "</body>"), encoding="utf-8")
    done = chromium(tmp, "--dump-dom", probe.as_uri())
    m = re.search(r'<pre id="browser-check">(.*?)</pre>', done.stdout, re.S)
    assert m, f"page did not finish loading in Chromium: {done.stderr[-2000:]}"
    return json.loads(m.group(1).replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<")
                      .replace("&gt;", ">"))


def assert_renders_cleanly(result: dict, page: Path) -> None:
    assert result["resources"] == [], f"{page}: page made requests {result['resources']}"
    assert result["decoded"] == result["images"], f"{page}: {result['images'] - result['decoded']} image(s) broken"
    assert result["scrollWidth"] <= result["innerWidth"] + 1, f"{page}: wider than a phone screen"


def test_every_page_renders_in_chromium_without_requests(built_reports, tmp_path):
    ws, index = built_reports
    pages = [index, *sorted(ws.reports_dir.glob("*/index.html"))]
    for page in pages:
        result = browser_check(page, tmp_path)
        assert_renders_cleanly(result, page)
        expected_images = page.read_text(encoding="utf-8").count("<img ")
        assert result["images"] == expected_images
    gainer = browser_check(ws.reports_dir / "gainer" / "index.html", tmp_path)
    assert gainer["images"] == 5 and gainer["headline"].startswith("In weeks 6")
    squad = browser_check(index, tmp_path)
    assert squad["images"] == 1  # the forest plot


def test_screenshot_at_phone_width(built_reports, tmp_path):
    ws, _ = built_reports
    shot = tmp_path / "gainer-phone.png"
    chromium(tmp_path, f"--screenshot={shot}", (ws.reports_dir / "gainer" / "index.html").as_uri())
    assert shot.exists() and shot.read_bytes().startswith(b"\x89PNG")
    assert int.from_bytes(shot.read_bytes()[16:20], "big") == PHONE_WIDTH


def test_checker_notices_an_external_image(tmp_path):
    """Negative control: without it, a checker that always passes would go unnoticed."""
    page = tmp_path / "bad" / "index.html"
    page.parent.mkdir()
    page.write_text('<!DOCTYPE html><html><head><meta name="viewport" content="width=device-width"></head>'
                    '<body><img src="http://example.invalid/x.png" alt="x"></body></html>', encoding="utf-8")
    result = browser_check(page, tmp_path)
    assert result["images"] == 1 and result["decoded"] == 0
    with pytest.raises(AssertionError):
        assert_renders_cleanly(result, page)
