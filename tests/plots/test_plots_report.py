"""The sweep's HTML report: self-contained, a sortable table of every row, charts; runs clean in Chromium."""

import base64
import json
import re
import shutil
import subprocess
import textwrap
from html.parser import HTMLParser

import pytest

pytest.importorskip("matplotlib", reason="matplotlib is not installed (pip install 'parplan[plots]')")

from planner.plots.report import write_report  # noqa: E402
from planner.sweep import SweepOptions, run_sweep  # noqa: E402

GRID = """
planner: estimate-train
axes:
  num_gpus: [8, 16, 32]
  tp: [1, 2]
fixed: {model: llama3-8b, gpu: h100-sxm, pp: 1, mbs: 1, gbs: 64, seq: 2048}
"""
BROWSERS = ("chromium", "chromium-headless-shell", "chromium-browser", "google-chrome", "chrome-headless-shell")
PROBE = """<script>
window.__errors = [];
window.addEventListener("error", function (e) { window.__errors.push("error: " + (e.message || e.target.src)); }, true);
console.error = function () { window.__errors.push("console.error: " + Array.prototype.join.call(arguments, " ")); };
</script>"""
CHECK = """<script>
window.addEventListener("load", function () {
  var th = Array.prototype.filter.call(document.querySelectorAll("th"), function (h) {
    return h.textContent === "num_gpus"; })[0];
  var column = Array.prototype.indexOf.call(th.parentNode.children, th);
  var read = function () { return Array.prototype.map.call(document.querySelector("table").tBodies[0].rows,
    function (r) { return Number(r.cells[column].getAttribute("data-v")); }); };
  th.click(); var up = read(); th.click(); var down = read();
  var images = Array.prototype.map.call(document.images, function (i) { return [i.complete, i.naturalWidth]; });
  var out = document.createElement("pre"); out.id = "probe";
  out.textContent = JSON.stringify({errors: window.__errors, up: up, down: down, images: images});
  document.body.appendChild(out);
});
</script>"""


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.images, self.rows, self.external = [], [], 0, []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        self.rows += tag == "tr"
        if tag == "img":
            self.images.append(attrs.get("src", ""))
        for key in ("src", "href"):
            if attrs.get(key) and not attrs[key].startswith("data:"):
                self.external.append(attrs[key])


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    (folder / "grid.yaml").write_text(textwrap.dedent(GRID))
    result = run_sweep(folder / "grid.yaml", folder / "results.csv", options=SweepOptions(workers=1, progress=False))
    assert [r["status"] for r in result.rows] == ["ok"] * 6, [r["error"] for r in result.rows]
    return result, write_report(result, folder / "report.html")


def test_report_is_self_contained_with_every_row_and_valid_images(report):
    result, path = report
    page = _Page()
    page.feed(path.read_text())
    assert page.external == []  # nothing fetched: opens offline
    assert page.rows == 1 + len(result.rows)  # header + one row per scenario
    assert len(page.images) >= 3  # MFU and tokens/s charts, and the best scenario's plan
    for src in page.images:
        data = base64.b64decode(src.split(",", 1)[1])
        assert src.startswith("data:image/png;base64,") and data[:8] == b"\x89PNG\r\n\x1a\n"
    assert "MFU vs num_gpus" in path.read_text()


def _browser() -> str | None:
    return next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)


def test_report_opens_in_headless_chromium_without_errors_and_sorts(report, tmp_path):
    browser = _browser()
    if browser is None:
        pytest.skip(f"no headless Chromium on PATH (looked for {', '.join(BROWSERS)})")
    result, path = report
    text = path.read_text().replace("<head>", "<head>" + PROBE, 1).replace("</body>", CHECK + "</body>", 1)
    probe = tmp_path / "probe.html"
    probe.write_text(text)
    done = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000",
                           "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=120)
    found = re.search(r'<pre id="probe">(.*?)</pre>', done.stdout, re.S)
    assert found, done.stderr[-2000:]
    state = json.loads(found.group(1).replace("&quot;", '"'))
    assert state["errors"] == []
    gpus = sorted(r["num_gpus"] for r in result.rows)
    assert state["up"] == gpus and state["down"] == gpus[::-1]
    assert state["images"] and all(done and width > 0 for done, width in state["images"])
