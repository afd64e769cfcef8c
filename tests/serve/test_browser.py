"""The workbench page in a real browser: Playwright driving Debian's Chromium at `freshrank serve api`."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright

from freshrank.config import Settings
from freshrank.evaluate.metrics import ndcg_at_k
from freshrank.evaluate.store import open_judgment_store
from tests.serve.conftest import ARTIFACTS, TOKEN, XSS_HASHTAG, XSS_TITLE

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
TIMEOUT_MS = 30_000  # generous: the CI box has 2 cores shared by many test processes
expect.set_options(timeout=TIMEOUT_MS)


# Module scope: Playwright's sync API keeps an asyncio loop running while it is alive, which would break
# later tests in the same process that call asyncio.run().
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: run `bash scripts/install-system-deps.sh` (Debian package chromium)"
        )
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
        )
        yield chromium
        chromium.close()


class Problems:
    """Console errors and uncaught page errors seen while a test ran."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.messages.append(f"console: {message.text}")

    def page_error(self, error: Exception) -> None:
        self.messages.append(f"page error: {error}")


@pytest.fixture
def page(browser: Browser, live_server: tuple[str, Path], request: pytest.FixtureRequest) -> Iterator[Page]:
    url, _ = live_server
    context = browser.new_context(base_url=url, viewport={"width": 1440, "height": 1000})
    context.set_default_timeout(TIMEOUT_MS)
    tab = context.new_page()
    problems = Problems()
    tab.on("console", problems.console)
    tab.on("pageerror", problems.page_error)
    yield tab
    ARTIFACTS.mkdir(exist_ok=True)
    tab.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()
    assert problems.messages == [], problems.messages


def open_workbench(page: Page, fragment: str = "") -> None:
    page.goto(f"/{fragment}")
    expect(page.locator("body[data-ready=true]")).to_be_attached()
    expect(page.locator("#results .result").first).to_be_visible()


def enter_token(page: Page) -> None:
    page.fill("#token", TOKEN)


def ndcg_shown(page: Page) -> float:
    return float(page.locator("#m-ndcg .m-value").inner_text())


def grade_in_store(settings: Settings, trend: str, genre: str, doc_id: int) -> int | None:
    store = open_judgment_store(settings.resolved_judgments_url)
    try:
        return {j.doc_id: j.grade for j in store.judgments(trend=trend, genre=genre)}.get(doc_id)
    finally:
        store.close()


def test_type_a_query_and_see_explained_results(page: Page) -> None:
    open_workbench(page)
    enter_token(page)
    expect(page.locator("#trends .trend")).to_have_count(3)
    page.fill("#q", "santa christmas")
    page.press("#q", "Enter")
    first = page.locator("#results .result").first
    expect(first.locator(".title")).to_have_text(
        re.compile("Santa Clause|Polar Express|Arthur Christmas|Elf")
    )
    # The explanation: a text segment and one per live trend, with the numbers that sum to the score.
    expect(first.locator(".xbar .seg").first).to_be_visible()
    # The trends-only page of the first load may still show: wait for the query's text segment.
    expect(first.locator(".xlegend")).to_contain_text("text")
    legend = first.locator(".xlegend").inner_text()
    assert "text" in legend and "#christmas" in legend and "#dinosaurs" in legend
    expect(page.locator("#judge-key")).to_contain_text("santa christmas")
    assert "q=santa+christmas" in page.url  # the query is shareable; the token never goes into the URL
    page.keyboard.press("1")  # Enter left the search box: digits now rate the highlighted result
    expect(first.locator(".grade.chosen")).to_have_text("1")
    page.select_option("#genre", "Horror")
    expect(page.locator("#results .result .genres").first).to_contain_text("Horror")


def test_rate_by_click_and_see_ndcg_change(page: Page, workbench_settings: Settings) -> None:
    open_workbench(page, "#trend=%23christmas&genre=Family")
    enter_token(page)
    expect(page.locator("#judge-key")).to_contain_text("#christmas")
    first = page.locator("#results .result").first
    doc_id = int(first.get_attribute("data-id") or "0")
    with page.expect_response(re.compile("/api/query-metrics")):
        first.locator(".grade[data-grade='0']").click()
    expect(first.locator(".grade.chosen")).to_have_text("0")
    expect(page.locator("#toast")).to_contain_text("Saved")
    low = ndcg_shown(page)
    with page.expect_response(re.compile("/api/query-metrics")):
        first.locator(".grade[data-grade='3']").click()
    expect(first.locator(".grade.chosen")).to_have_text("3")
    expect(page.locator("#m-ndcg .m-delta")).to_contain_text("▲")
    high = ndcg_shown(page)
    assert high > low
    assert grade_in_store(workbench_settings, "#christmas", "Family", doc_id) == 3
    # The number on the page is nDCG@10 of the ranking on the page against the stored judgments.
    ranking = [
        int(x) for x in page.locator("#results .result").evaluate_all("els => els.map(e => e.dataset.id)")
    ]
    store = open_judgment_store(workbench_settings.resolved_judgments_url)
    qrels = {j.doc_id: j.grade for j in store.judgments(trend="#christmas", genre="Family")}
    store.close()
    assert high == pytest.approx(ndcg_at_k(ranking, qrels, 10), abs=5e-4)
    page.screenshot(path=str(ARTIFACTS / "workbench-judging.png"))


def test_keyboard_rating(page: Page, workbench_settings: Settings) -> None:
    open_workbench(page, "#trend=%23dinosaurs&genre=Comedy")
    enter_token(page)
    page.locator("h1, .brand").first.click()  # focus leaves the inputs: keys now drive the list
    cards = page.locator("#results .result")
    expect(cards.nth(0)).to_have_class(re.compile("focused"))
    page.keyboard.press("j")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("k")
    expect(cards.nth(1)).to_have_class(re.compile("focused"))
    page.keyboard.press("2")
    expect(cards.nth(1).locator(".grade.chosen")).to_have_text("2")
    doc_id = int(cards.nth(1).get_attribute("data-id") or "0")
    assert grade_in_store(workbench_settings, "#dinosaurs", "Comedy", doc_id) == 2
    expect(page.locator("#m-judged .m-value")).to_contain_text("(1/10)")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("1")
    expect(cards.nth(2).locator(".grade.chosen")).to_have_text("1")
    expect(page.locator("#m-judged .m-value")).to_contain_text("(2/10)")


def test_compare_baseline_and_boosted(page: Page) -> None:
    open_workbench(page, "#trend=%23christmas&genre=Family")
    page.click(".tab[data-tab=compare]")
    columns = page.locator("#compare .cmp-col")
    expect(columns).to_have_count(2)
    expect(columns.nth(0).locator("h3")).to_contain_text("baseline")
    expect(columns.nth(1).locator("h3")).to_contain_text("trend-boosted")
    moves = columns.nth(1).locator(".move")
    expect(moves.first).to_be_visible()
    texts = moves.all_inner_texts()
    assert any(t == "new" or t.startswith(("▲", "▼")) for t in texts), texts
    page.screenshot(path=str(ARTIFACTS / "workbench-compare.png"))
    page.check("input[name=cmp-mode][value=models]")
    # Only the embedding baseline exists and it is the champion: nothing to compare it with yet.
    expect(page.locator("#compare")).to_contain_text("No candidate model is registered yet.")


def test_snapshots_and_diff(page: Page) -> None:
    open_workbench(page, "#trend=%23dinosaurs&genre=Adventure")
    enter_token(page)
    page.click(".tab[data-tab=snapshots]")
    page.fill("#snap-name", "adventure-before")
    page.click("#snap-form button[type=submit]")
    expect(page.locator("#snap-list .snap-name", has_text="adventure-before")).to_be_visible()
    page.click(".tab[data-tab=results]")
    page.locator("#results .result").first.locator(".grade[data-grade='3']").click()
    expect(page.locator("#results .result").first.locator(".grade.chosen")).to_have_text("3")
    page.click(".tab[data-tab=snapshots]")
    page.fill("#snap-name", "adventure-after")
    page.click("#snap-form button[type=submit]")
    expect(page.locator("#snap-list .snap-name", has_text="adventure-after")).to_be_visible()
    page.check("input[name=snap-a][value=adventure-before]")
    page.check("input[name=snap-b][value=adventure-after]")
    page.click("#snap-diff")
    expect(page.locator("#snap-result .deltas")).to_contain_text("ndcg at 10 +1.000")


def test_operations_panel(page: Page) -> None:
    open_workbench(page)
    enter_token(page)
    expect(page.locator("#models li.champion")).to_contain_text("embedding")
    expect(page.locator("#monitor-decision")).not_to_have_text("—")
    page.click("#refresh-btn")
    expect(page.locator("#ops-log li").first).to_contain_text("refreshed")
    expect(page.locator("#health")).to_have_class(re.compile("ok"))
    assert page.evaluate("sessionStorage.getItem('freshrank.token')") == TOKEN
    assert TOKEN not in page.url


def test_hostile_titles_and_hashtags_show_as_text(page: Page, live_server: tuple[str, Path]) -> None:
    open_workbench(page)
    hostile = page.locator("#trends .trend-tag", has_text="onerror")
    expect(hostile).to_have_text(XSS_HASHTAG)
    assert page.locator("#trends img").count() == 0
    page.fill("#q", "script")
    page.press("#q", "Enter")
    expect(page.locator("#results .result .title").first).to_have_text(XSS_TITLE)
    hostile.click()  # picking it puts it in the chips, the URL and the explanation: still text
    expect(page.locator("#chips .chip").first).to_contain_text(XSS_HASHTAG)
    expect(page.locator("#results .result").first).to_be_visible()
    assert page.locator("main script, main img, aside img").count() == 0
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert page.evaluate("typeof window.__xss2") == "undefined"
    _, log = live_server
    assert TOKEN not in log.read_text()  # the server never logs the token
    page.screenshot(path=str(ARTIFACTS / "workbench-xss.png"))


def test_screenshot_of_the_workbench(page: Page) -> None:
    """A picture of the page in use (test-artifacts/workbench.png), with a query judged in part."""
    open_workbench(page, "#trend=%23christmas&genre=Family")
    page.locator("#results .result").first.click()
    expect(page.locator("#m-ndcg .m-value")).not_to_have_text("–")
    page.screenshot(path=str(ARTIFACTS / "workbench.png"))
