"""`lugpi report`'s index.html in a real headless browser: every image loads, nothing is wider than the page.

Uses Chromium (Debian's package: `apt-get install -y chromium`); skipped when no browser is installed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from ..recipes.test_report import _world

BROWSER = next((shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome")
                if shutil.which(name)), None)
pytestmark = [pytest.mark.slow, pytest.mark.skipif(BROWSER is None, reason="no Chromium installed")]

CHECK = """<script>
window.addEventListener("load", () => {
  const width = window.innerWidth;
  const images = [...document.images];
  const wide = [...document.body.querySelectorAll("*")]
    .filter(e => e.getBoundingClientRect().right > width + 1).map(e => e.tagName + " " + (e.getAttribute("src") || ""));
  const result = {images: images.length, width: width, scroll_width: document.documentElement.scrollWidth, wide: wide,
    broken: images.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute("src"))};
  const pre = document.createElement("pre");
  pre.id = "lugpi-check";
  pre.textContent = JSON.stringify(result);
  document.body.appendChild(pre);
});
</script>"""


def browse(page: Path, tmp_path: Path, width: int) -> dict:
    """Load ``page`` (with the checking script appended, beside it so relative paths hold) at ``width`` px."""
    checked = page.with_name("_check_" + page.name)
    checked.write_text(page.read_text() + CHECK)
    try:
        out = subprocess.run(
            [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'browser-profile'}", f"--window-size={width},900",
             "--virtual-time-budget=5000", "--dump-dom", checked.as_uri()],
            capture_output=True, text=True, timeout=120).stdout
    finally:
        checked.unlink()
    start = out.index('<pre id="lugpi-check">') + len('<pre id="lugpi-check">')
    return json.loads(out[start:out.index("</pre>", start)].replace("&quot;", '"'))


def _history(run_dir: Path, accuracies: list[float]) -> None:
    (run_dir / "history.jsonl").write_text("".join(
        json.dumps({"epoch": e + 1, "val_accuracy": a}) + "\n" for e, a in enumerate(accuracies)))


def test_report_page_in_a_headless_browser(cli, workspace, tmp_path):
    teacher, baseline = _world(workspace, right_wrong=5)
    _history(teacher.dir, [0.6, 0.7, 0.8])
    _history(baseline.dir, [0.5, 0.55, 0.6])
    out = json.loads(cli("report", "--teacher", "teacher", "--baseline", "baseline", "--json").stdout)
    assert "curves" in out["files"]
    page = Path(out["files"]["html"])
    for width in (1280, 800):
        result = browse(page, tmp_path, width)
        assert result["images"] == 5 + 2  # five examples, the learning curves and the densities
        assert result["broken"] == [], result
        assert result["wide"] == [] and result["scroll_width"] <= result["width"], result


def test_the_check_sees_a_broken_image_and_an_overflow(tmp_path):
    page = tmp_path / "bad.html"
    page.write_text('<!doctype html><html><body><img src="missing.png"><div style="width:3000px">wide</div>'
                    "</body></html>")
    result = browse(page, tmp_path, 800)
    assert result["broken"] == ["missing.png"] and result["wide"] and result["scroll_width"] > 800
