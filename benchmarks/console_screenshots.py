"""Screenshots of the operator console's main screens, on real footage (issue 12 §2).

Run from the repository root (after the README's install, with Debian's ``chromium`` and the
``playwright`` package)::

    python benchmarks/console_screenshots.py [--out docs/screenshots] [--model M]

One ``kontur run`` (``tests/console/live_site.py``): PETS09 once through as camera ``cam1``
(H.264, so its clips play and export), YOLOX-Nano, a person dwelling 2 s asks the operator for
an ``alarm``. One user, ``demo``, holds operator, investigator and
auditor (never admin: it would see no video). In Chromium (1400x900), the script:

1. operator queue: waits for a real request with its decision frame → ``operator.png``, then
   confirms it with a reason;
2. overview: the camera's live snapshot, verdict strip and sparklines → ``overview.png``;
3. events and decisions, filtered to OPERATOR → ``events.png``;
4. evidence of the confirmed decision: its clip and frame from the archive, then an export
   bundle built by the running site → ``evidence.png``;
5. system: transitions, placement, latency, checkpoints → ``system.png``.

Skips with a message when ``../shared/data``, chromium or playwright is absent.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.console.live_site import SHARED, LiveSite, User, live_site  # noqa: E402

DEMO = User("demo", ("operator", "investigator", "auditor"), "demo-correct-horse-battery")
WAIT_MS = 300_000
_LOADED = "img => img.complete && img.naturalWidth > 0"


def _sign_in(page: Any, site: LiveSite) -> None:
    page.goto(site.url + "/ui/login")
    page.fill("#login-name", DEMO.name)
    page.fill("#login-password", DEMO.password)
    page.click("#login-submit")
    page.wait_for_url(site.url + "/ui/")


def _overview(page: Any, out: Path) -> None:
    img = page.wait_for_selector("#cam-cam1 img.snapshot:not([hidden])", timeout=WAIT_MS)
    page.wait_for_function(_LOADED, arg=img)
    page.wait_for_timeout(12_000)  # a few polls: the fps sparklines get some points
    page.screenshot(path=str(out / "overview.png"), full_page=True)


def _operator(page: Any, site: LiveSite, out: Path) -> str:
    page.goto(site.url + "/ui/operator")
    card = page.wait_for_selector(".request", timeout=WAIT_MS)
    page.wait_for_function(_LOADED, arg=card.query_selector("img.frame"))
    page.wait_for_timeout(1500)  # the verifier's findings arrive in a second call
    page.screenshot(path=str(out / "operator.png"))
    rid = str(card.get_attribute("data-request"))
    card.query_selector("textarea").fill("person at the fence after hours, seen live")
    card.query_selector("button.confirm").click()
    page.wait_for_selector(f"#req-{rid} .result.ok", timeout=WAIT_MS)
    return rid.removeprefix("op-")


def _events(page: Any, site: LiveSite, out: Path) -> None:
    page.goto(site.url + "/ui/events?outcome=OPERATOR")
    page.wait_for_selector("#decisions td.operator li", timeout=WAIT_MS)
    page.wait_for_selector("#records tbody tr")
    page.screenshot(path=str(out / "events.png"))


def _evidence(page: Any, site: LiveSite, out: Path, index: str) -> None:
    page.goto(f"{site.url}/ui/evidence?index={index}")
    page.wait_for_selector("#ev-verification dd")
    page.wait_for_function(_LOADED, arg=page.wait_for_selector("#ev-frame:not([hidden])"))
    try:
        page.wait_for_function("v => v.readyState >= 2", arg=page.query_selector("#ev-clip"))
    except Exception as exc:  # a chromium without H.264 shows the status line instead
        print(f"console_screenshots: the clip did not play here: {exc}", file=sys.stderr)
    page.click("#export-button")
    page.wait_for_selector("#export-status a", timeout=WAIT_MS)  # the bundle is ready
    page.screenshot(path=str(out / "evidence.png"), full_page=True)


def _system(page: Any, site: LiveSite, out: Path) -> None:
    page.goto(site.url + "/ui/system")
    page.wait_for_selector("#placement tbody tr td")
    page.wait_for_selector("#checkpoints tbody tr td")
    page.screenshot(path=str(out / "system.png"), full_page=True)


def _shoot(site: LiveSite, out: Path, chromium: str) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.set_default_timeout(60_000)
        _sign_in(page, site)
        index = _operator(page, site, out)
        page.goto(site.url + "/ui/")
        _overview(page, out)
        _events(page, site, out)
        _evidence(page, site, out, index)
        _system(page, site, out)
        browser.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    ap.add_argument("--model", type=Path, default=SHARED / "models" / "yolox_nano.onnx")
    args = ap.parse_args()
    videos = {"cam1": SHARED / "video" / "pets09_s2l1_480x360.avi"}
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    missing = [str(v) for v in (*videos.values(), args.model) if not v.exists()]
    if missing or chromium is None:
        print(f"console_screenshots: skipped: needs {missing or 'chromium'}", file=sys.stderr)
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    # not looping: an export span across a loop's restart fails (a GOP without its verdict)
    with (
        tempfile.TemporaryDirectory(prefix="kontur-console-") as tmp,
        live_site(Path(tmp), [DEMO], videos, args.model, 600.0, loop=False) as site,
    ):
        _shoot(site, args.out, chromium)
    print(f"console_screenshots: wrote {sorted(p.name for p in args.out.glob('*.png'))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
