"""The studio in a real browser: Debian's Chromium (headless, driven by playwright with
``executable_path``; playwright never downloads a browser) against the app served by uvicorn
on loopback, with real Dagster runs (an in-process daemon on a test instance).

Sign in with a one-time link, create a kit, watch its run finish, take a new take of one
expression, choose it over the original, approve the kit, see the report updated. A
screenshot of each step is kept under ``var/studio_screens/``.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import uvicorn

from avatar_pipeline.commands.users import signin_link
from avatar_pipeline.resources import ConsistencyResource
from avatar_pipeline.serving.config import build_services
from avatar_pipeline.serving.main import create_app
from avatar_pipeline_tests.pipeline_fixtures import make_resources
from avatar_pipeline_tests.test_serving.conftest import make_settings
from avatar_pipeline_tests.test_serving.factories import KIT_PROMPTS, make_person
from avatar_pipeline_tests.test_serving.studio_daemon import InProcessDaemon
from avatar_pipeline_tests.test_serving.studio_helpers import stable_kit_ids

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
STATUS_ACTIVE = 'class="badge status">active<'  # the kit report's status badge
SCREENS = Path(__file__).resolve().parents[2] / "var" / "studio_screens"

if not CHROMIUM.exists():
    reason = "Debian's chromium is not installed (apt-get install -y chromium; .ci/run does it)"
    if os.environ.get("CI"):
        raise RuntimeError(reason)
    pytest.skip(reason, allow_module_level=True)

sync_api = pytest.importorskip("playwright.sync_api")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerThread:
    """The studio app under uvicorn on a loopback port, in a thread."""

    def __init__(self, app: object, port: int) -> None:
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")  # type: ignore[arg-type]
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the studio server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(20)


@pytest.fixture
def studio_url(
    tmp_path: Path, migrated_template: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, str, InProcessDaemon]]:
    stable_kit_ids(monkeypatch)
    database = tmp_path / "catalog.db"
    shutil.copy(migrated_template, database)
    url = f"sqlite:///{database}"
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    settings = make_settings(tmp_path, url).model_copy(update={"public_base_url": base})
    services = build_services(settings, migrate=True)
    admin = make_person(settings, services.session_factory, "admin", email="art-ops@example.com")
    resources = make_resources(
        tmp_path,
        url,
        consistency=ConsistencyResource(
            embedder="perceptual",
            embedding_cache_dir=str(tmp_path / "embeddings"),
            reports_dir=str(settings.reports_dir),
        ),
    )
    link = signin_link(settings, admin.email)  # what `avatar-pipeline signin-link` prints
    assert link.startswith(f"{base}/studio/signin/")
    with (
        dg.instance_for_test() as instance,
        ServerThread(create_app(settings, services=services), port),
    ):
        daemon = InProcessDaemon(resources, instance)
        daemon.start()
        try:
            yield base, link, daemon
        finally:
            daemon.stop()
    services.close()


def test_sign_in_create_watch_take_choose_approve_report(
    studio_url: tuple[str, str, InProcessDaemon],
) -> None:
    base, link, daemon = studio_url
    shutil.rmtree(SCREENS, ignore_errors=True)
    SCREENS.mkdir(parents=True)
    shots = iter(range(1, 100))

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(45_000)
            console_errors: list[str] = []
            page.on("console", lambda m: m.type == "error" and console_errors.append(m.text))
            page.route(  # nothing may leave loopback (no CDN, no fonts)
                "**/*",
                lambda route: (
                    route.continue_()
                    if route.request.url.startswith(base) or route.request.url.startswith("data:")
                    else route.abort()
                ),
            )

            def shot(name: str) -> None:
                page.wait_for_function(  # every image shown (none broken) before the picture
                    "Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)"
                )
                page.screenshot(path=str(SCREENS / f"{next(shots):02d}_{name}.png"), full_page=True)

            # 1. sign in with the one-time link
            page.goto(link)
            shot("signin_link")
            page.click("#signin-button")
            page.wait_for_url(f"{base}/studio/kits")
            shot("kits_empty")

            # 2. create a kit (for a new character); the page watches its generation request
            page.click("#new-kit")
            page.fill("input[name=new_character]", "Yuki")
            page.fill("input[name=name]", "Yuki Default")
            page.fill("textarea[name=appearance_prompt]", KIT_PROMPTS["appearance_prompt"])
            page.fill("textarea[name=style_prompt]", KIT_PROMPTS["style_prompt"])
            page.fill("textarea[name=negative_prompt]", KIT_PROMPTS["negative_prompt"])
            shot("new_kit_form")
            page.click("#create-kit")
            page.wait_for_selector("#watch")
            shot("watching_run")

            # 3. the run finishes; the page reloads to the model sheet
            page.wait_for_url("**finished=**", timeout=60_000)
            assert "run finished" in page.inner_text("#message"), daemon.errors
            # every slot has its image: canonical, or waiting for a person when a check could
            # not be measured (the perceptual embedder has no text tower)
            assert page.locator("#model-sheet article.slot").count() == 14
            empty = page.locator("#model-sheet article.slot:not(:has(figure))")
            assert empty.count() == 0, daemon.errors
            shot("model_sheet")
            happy = page.locator("#slot-expression-happy")
            assert happy.locator("figure").count() == 1
            original = happy.locator("figure").get_attribute("data-asset")

            # 4. a new take of one expression: it waits next to the original
            happy.locator("button.new-take").click()
            page.wait_for_selector("#watch")
            page.wait_for_url("**finished=**", timeout=60_000)
            happy = page.locator("#slot-expression-happy")
            take = happy.locator('.candidate.pending figure[data-take="1"]')
            assert take.count() == 1, daemon.errors
            new_take = take.get_attribute("data-asset")
            assert happy.locator(f'figure[data-asset="{original}"]').count() == 1
            assert new_take != original
            shot("two_takes_side_by_side")

            # 5. choose the new take
            happy.locator('.candidate.pending:has(figure[data-take="1"]) button.use').click()
            page.wait_for_url("**message=**")
            happy = page.locator("#slot-expression-happy")
            assert happy.locator("figure.canonical").get_attribute("data-asset") == new_take
            shot("new_take_chosen")

            # 6. approve the kit
            page.click("#approve")
            page.wait_for_url("**message=kit**")
            assert page.inner_text("#kit-status") == "active"
            shot("kit_approved")

            # 7. the report shows the approved kit with the chosen take
            report_url = page.url.split("?")[0].replace("/studio/kits/", "/reports/")
            report, deadline = "", time.monotonic() + 30
            while time.monotonic() < deadline:  # the pipeline refreshes it (a sensor tick)
                response = page.goto(f"{report_url}/report.html")
                assert response is not None
                report = page.content()
                if response.ok and STATUS_ACTIVE in report and new_take in report:
                    break
                time.sleep(0.5)
            shot("report")
            assert STATUS_ACTIVE in report and new_take in report, "the report was not updated"

            page.goto(f"{base}/studio/kits")
            assert "active" in page.inner_text("table.kits")
            shot("kits_list")
            assert not console_errors, console_errors
            assert not daemon.errors, daemon.errors
            (SCREENS / "daemon_runs.txt").write_text(  # what the pipeline ran, and how long
                "\n".join(f"{job}\t{trigger}\t{secs:.1f}s" for job, trigger, secs in daemon.timings)
            )
        finally:
            browser.close()
