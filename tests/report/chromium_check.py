"""Driving a real headless Chromium over a report page and reading back what it saw (shared by the tests).

How: the page is copied beside the test with a checker script appended; Chromium loads it from file:// with
every host name resolving to nothing (an external request fails and never leaves the machine), and
``--dump-dom`` returns the DOM after the checker, which waits for the charts to be drawn, has written what it
measured into a ``<pre>``: requests made, images decoded, page width against the viewport, the headline box,
the smallest figure text in CSS px (SVG text: computed font size x the element's screen scale; PNG figures:
their smallest text in image pixels, as the build recorded it, x displayed / natural width), the data bound
to each named chart mark (one per run), the estimates' colours, a real hover's tooltip, and where the squad
tables' columns sit.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
PHONE_WIDTH = 390
DESKTOP_WIDTH = 1280

CHECKER = r"""<script>
(function () {
  function marks(name) {
    var g = document.querySelector("g." + name + "_marks");
    if (!g) { return null; }
    return Array.prototype.map.call(g.querySelectorAll("path, line"), function (p) {
      var d = (p.__data__ && p.__data__.datum) || {};
      var out = {fill: p.getAttribute("fill"), stroke: p.getAttribute("stroke"), d: (p.getAttribute("d") || "").length};
      ["when", "distance", "pace", "hr", "temperature", "status", "label", "note", "colour", "economy",
       "shape", "change", "verdict", "text"].forEach(
        function (k) { if (k in d) { out[k] = d[k]; } });
      return out;
    });
  }
  function fonts() {
    var sizes = [];
    document.querySelectorAll(".chart svg text").forEach(function (t) {
      if (!t.textContent.trim() || t.getClientRects().length === 0) { return; }
      var ctm = t.getScreenCTM();
      sizes.push({px: parseFloat(getComputedStyle(t).fontSize) * (ctm ? Math.hypot(ctm.a, ctm.b) : 1),
                  text: t.textContent.slice(0, 40)});
    });
    document.querySelectorAll("img[data-min-font-px]").forEach(function (img) {
      sizes.push({px: parseFloat(img.getAttribute("data-min-font-px")) * img.clientWidth / img.naturalWidth,
                  text: "image " + img.alt.slice(0, 30)});
    });
    sizes.sort(function (a, b) { return a.px - b.px; });
    return sizes;
  }
  function hover() {
    var p = document.querySelector("g.runs_marks path");
    if (!p) { return null; }
    var r = p.getBoundingClientRect(), x = r.left + r.width / 2, y = r.top + r.height / 2;
    p.dispatchEvent(new PointerEvent("pointermove", {bubbles: true, clientX: x, clientY: y}));
    p.dispatchEvent(new MouseEvent("mousemove", {bubbles: true, clientX: x, clientY: y}));
    return new Promise(function (ok) { setTimeout(function () {
      var tip = document.getElementById("vg-tooltip-element");
      ok({text: tip ? tip.textContent : null, visible: !!tip && tip.classList.contains("visible"),
          when: p.__data__ && p.__data__.datum.when});
    }, 300); });
  }
  function columns(table) {
    return Array.prototype.map.call(document.querySelectorAll("#" + table + " thead th"), function (th) {
      var r = th.getBoundingClientRect(); return {text: th.textContent.trim(), left: r.left, right: r.right};
    });
  }
  function report(extra) {
    var text = function (id) { var e = document.getElementById(id); return e ? e.textContent.replace(/\s+/g, " ").trim() : null; };
    var imgs = Array.prototype.slice.call(document.images);
    var result = {
      charts: document.body.getAttribute("data-charts"),
      images: imgs.length,
      decoded: imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length,
      resources: performance.getEntriesByType("resource").map(function (e) { return e.name; }),
      scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth,
      headline: text("headline"), runner: text("runner-units"), honesty: text("honesty"), trust: text("trust"),
      verdict: text("verdict"), change: text("change"),
      fonts: fonts().slice(0, 5), nFonts: fonts().length,
      marks: {}, hover: extra, columns: columns("squad-table"), pooledColumns: columns("pooled-table"),
      chartIds: Array.prototype.map.call(document.querySelectorAll(".chart"), function (c) { return c.id; }),
      drawn: Array.prototype.filter.call(document.querySelectorAll(".chart"), function (c) { return c.querySelector("svg"); }).length
    };
    ["runs", "excluded_runs", "temperature_runs", "decoupling_runs", "hr_speed_runs", "estimates", "trend_band",
     "trend_line", "response_level", "gap", "block_effects", "squad_forest", "dose_blocks", "controls", "real_estimate", "calibrated_estimate",
     "systematic_band"].forEach(function (n) { result.marks[n] = marks(n); });
    var pre = document.createElement("pre");
    pre.id = "browser-check";
    pre.textContent = JSON.stringify(result);
    document.body.appendChild(pre);
    if (window.parent !== window) { window.parent.postMessage(JSON.stringify(result), "*"); }
  }
  window.addEventListener("load", function () {
    var waited = 0;
    (function poll() {
      var state = document.body.getAttribute("data-charts");
      if (!document.querySelector(".chart") || state || waited > 8000) {
        var h = state === "ready" ? hover() : null;
        Promise.resolve(h).then(report);
      } else { waited += 100; setTimeout(poll, 100); }
    })();
  });
})();
</script>"""


def chromium(tmp: Path, width: int, *args: str) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp / f'profile-{width}'}",
             # Any host name resolves to nothing: an external request would fail, never leave the machine.
             "--host-resolver-rules=MAP * ~NOTFOUND",
             f"--window-size={width},2400", "--hide-scrollbars", "--virtual-time-budget=15000"]
    return subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=120)


# Headless Chromium keeps its window at least 500 px wide, so the page is loaded into an iframe exactly
# ``width`` CSS px wide (its own viewport: media queries and container widths follow it); the checker in the
# page posts its result to this wrapper, which writes it where --dump-dom returns it.
WRAPPER = """<!DOCTYPE html><html><head><meta charset="utf-8"></head><body style="margin:0">
<iframe src="{src}" style="width:{width}px;height:2400px;border:0"></iframe>
<script>window.addEventListener("message", function (e) {{
  var pre = document.createElement("pre"); pre.id = "browser-check"; pre.textContent = e.data;
  document.body.appendChild(pre); }});</script></body></html>"""


def browser_check(page: Path, tmp: Path, width: int = PHONE_WIDTH) -> dict:
    """Load a copy of ``page`` with the checker script at ``width`` CSS px; return what the script saw."""
    probe = page.with_name(f"probe-{width}.html")   # beside the page: its relative links stay valid
    wrapper = page.with_name(f"probe-wrapper-{width}.html")
    html = page.read_text(encoding="utf-8")
    cut = html.rindex("</body>")             # the last one: the inlined JavaScript may spell it in a string
    probe.write_text(html[:cut] + CHECKER + html[cut:], encoding="utf-8")
    wrapper.write_text(WRAPPER.format(src=probe.name, width=width), encoding="utf-8")
    try:
        done = chromium(tmp, max(width, 500), "--dump-dom", wrapper.as_uri())
    finally:
        probe.unlink()
        wrapper.unlink()
    m = re.search(r'<pre id="browser-check">(.*?)</pre>', done.stdout, re.S)
    assert m, f"page did not finish loading in Chromium: {done.stderr[-2000:]}"
    return json.loads(m.group(1).replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<")
                      .replace("&gt;", ">"))


def assert_renders_cleanly(result: dict, page: Path) -> None:
    assert result["resources"] == [], f"{page}: page made requests {result['resources']}"
    assert result["decoded"] == result["images"], f"{page}: {result['images'] - result['decoded']} image(s) broken"
    assert result["scrollWidth"] <= result["innerWidth"] + 1, f"{page}: wider than the screen"
    assert result["charts"] in (None, "ready"), f"{page}: charts failed: {result['charts']}"
    assert result["drawn"] == len(result["chartIds"]), f"{page}: not every chart was drawn"
