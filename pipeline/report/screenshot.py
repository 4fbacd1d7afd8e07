"""``python -m pipeline.report.screenshot PAGE OUT.png``: the README's picture of a report page.

Renders ``PAGE`` (an athlete page written by ``pipeline report``) in headless Chromium (``/usr/bin/chromium``
or the first ``chromium``/``chromium-browser``/``google-chrome`` on the PATH) at phone width, waits for the
charts, and saves the top of the page as a palette PNG (matplotlib's Pillow, 64 colours) so the committed
file stays small. Offline: every host name resolves to nothing.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

WIDTH_PX = 500          # headless Chromium's narrowest window; the page lays out as on a phone
HEIGHT_PX = 1500
COLOURS = 64


def chromium_binary() -> str:
    for name in ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise SystemExit("headless Chromium not found (install Debian's chromium)")


def screenshot(page: Path, out: Path, width: int = WIDTH_PX, height: int = HEIGHT_PX) -> Path:
    """Render ``page`` and write a small palette PNG of its top ``height`` CSS px to ``out``."""
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "shot.png"
        subprocess.run([chromium_binary(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        f"--user-data-dir={tmp}/profile", "--host-resolver-rules=MAP * ~NOTFOUND",
                        f"--window-size={width},{height}", "--virtual-time-budget=15000",
                        f"--screenshot={raw}", page.resolve().as_uri()],
                       check=True, capture_output=True, timeout=120)
        image = Image.open(raw).convert("RGB").quantize(COLOURS, method=Image.Quantize.MEDIANCUT)
        out.parent.mkdir(parents=True, exist_ok=True)
        image.save(out, optimize=True)
    return out


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        raise SystemExit("usage: python -m pipeline.report.screenshot PAGE.html OUT.png")
    out = screenshot(Path(args[0]), Path(args[1]))
    print(f"{out} ({out.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
