#!/usr/bin/env python3
"""Drives the web console of a running `skald serve` in headless Chromium (Debian's `chromium`, through Playwright),
as an operator would, and writes a screenshot of each page. Started by ConsoleTests (the Swift test that prepares the
server, its runs and the participants); it prints what it checks and exits 1 at the first thing that is wrong.

    scripts/console-check.py URL TOKEN RUNNING_RUN_ID SCREENSHOT_FOLDER STUCK_RUN_ID WAITING_RUN_ID

RUNNING_RUN_ID is a run held in its first step by its participant. The script cancels it through the console, prints
"cancel confirmed", and waits (without reloading) for the page to show it compensated: the test releases the held
call when it reads that line. STUCK_RUN_ID is a run stuck after its pivot on ship-order: the script resolves that step
by hand through the console and waits for the run to complete. WAITING_RUN_ID is a refund (Sagas/refund.json) waiting
for a manager's approval: the script finds it among the runs waiting for a person, approves it and waits for it to
complete.
"""
import os
import shutil
import sys

try:
    from playwright.sync_api import sync_playwright
except ImportError:
    print("console-check: Python's playwright is missing: python3 -m pip install playwright (it drives the system Chromium)")
    sys.exit(2)


def chromium_path():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    print("console-check: no Chromium found: apt-get install chromium")
    sys.exit(2)


def step(text):
    print("console-check: " + text, flush=True)


def wait_until(page, condition, what, timeout_ms=60_000, seen=None):
    """Polls `condition` (locator reads only: the page's Content-Security-Policy forbids evaluating strings in it).
    `seen` gives what the page shows instead, for the message when it times out."""
    waited = 0
    while not condition():
        if waited >= timeout_ms:
            raise SystemExit("console-check: timed out waiting for " + what + ("; the page shows: " + seen() if seen else ""))
        page.wait_for_timeout(100)
        waited += 100


def main():
    url, token, running, folder, stuck, waiting, items = sys.argv[1:8]
    os.makedirs(folder, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        timeout = 60_000

        # The token is asked for once, then kept for the tab.
        page.goto(url)
        page.wait_for_selector("#token-dialog[open]", timeout=timeout)
        page.fill("#token-input", token)
        page.click("#token-form button")
        page.wait_for_selector(f'#runs-body tr[data-run="{running}"]', timeout=timeout)
        rows = page.locator("#runs-body tr").count()
        if rows < 5:
            raise SystemExit(f"console-check: the runs table shows {rows} runs, expected at least 5")
        status = page.locator(f'#runs-body tr[data-run="{running}"] .badge').inner_text()
        if status != "running":
            raise SystemExit(f"console-check: the held run shows as {status!r}, expected 'running'")
        current = page.locator(f'#runs-body tr[data-run="{running}"] td').nth(5).inner_text()
        if "reserve-stock" not in current:
            raise SystemExit(f"console-check: the held run's current step shows as {current!r}")
        running_count = page.locator('.count[data-status="running"] b').inner_text()
        completed_count = page.locator('.count[data-status="completed"] b').inner_text()
        # Running: the held checkout and the refund waiting for a person.
        if running_count != "2" or completed_count != "2":
            raise SystemExit(f"console-check: counts show running={running_count} completed={completed_count}, expected 2 and 2")
        step("runs listed: %d rows, running=%s completed=%s" % (rows, running_count, completed_count))

        # The Content-Security-Policy lets the page's own script run (it just did) and nothing else: markup injected
        # into the page (as a stored value rendered by mistake would be) runs neither an inline handler nor a script.
        title = page.title()
        page.evaluate("""() => {
            document.body.insertAdjacentHTML("beforeend", '<img id="injected" src="/no-such-image" onerror="document.title=\\'injected\\'">');
            const script = document.createElement("script");
            script.textContent = "document.title = 'injected script'";
            document.body.append(script);
        }""")
        page.wait_for_selector("#injected", state="attached", timeout=timeout)
        page.wait_for_timeout(500)
        if page.title() != title:
            raise SystemExit(f"console-check: injected markup ran: the title became {page.title()!r}")
        step("injected inline handlers and scripts do not run")
        page.screenshot(path=os.path.join(folder, "runs.png"), full_page=True)

        # Filtering by status and searching by id.
        page.select_option("#filter-status", "completed")
        badges = page.locator("#runs-body .badge")
        wait_until(page, lambda: badges.count() == 2 and badges.all_inner_texts() == ["completed", "completed"], "the completed runs only")
        page.fill("#search", running)
        page.press("#search", "Enter")
        rows = page.locator("#runs-body tr")
        wait_until(page, lambda: rows.count() == 1 and rows.first.get_attribute("data-run") == running, "the searched run only")
        step("filter by status and search by id work")

        # The running run: graph and timeline drawn, then cancelled through the console.
        page.click(f'#runs-body tr[data-run="{running}"] a')
        page.wait_for_selector('#graph g[data-step="reserve-stock"][data-status="running"]', timeout=timeout)
        page.wait_for_selector("#timeline rect[data-outcome='in_flight']", timeout=timeout)
        steps = page.locator("#graph g[data-step]").count()
        if steps != 3:
            raise SystemExit(f"console-check: the graph has {steps} steps, expected 3")
        if page.locator("#action-retry").count() or page.locator("#action-resolve").count():
            raise SystemExit("console-check: retry or resolve is offered for a running run")
        step("run page: graph with 3 steps, attempt in flight on the timeline")
        page.screenshot(path=os.path.join(folder, "run-running.png"), full_page=True)
        page.click("#action-cancel")
        page.wait_for_selector("#action-dialog[open]", timeout=timeout)
        page.fill("#action-note", "customer called to cancel")
        page.fill("#action-by", "console-check")
        page.click("#action-confirm")
        page.wait_for_selector('h2 .badge[data-status="compensating"], h2 .badge[data-status="compensated"]', timeout=timeout)
        step("cancel confirmed")
        # No reload from here: the page follows the run through the events long poll.
        page.wait_for_selector('h2 .badge[data-status="compensated"]', timeout=timeout)
        page.wait_for_selector('#graph g[data-step="reserve-stock"][data-status="compensated"]', timeout=timeout)
        page.wait_for_selector("#timeline rect[data-phase='compensate']", timeout=timeout)
        history = page.locator("#history").inner_text()
        if "run_cancelled" not in history or "console-check" not in history:
            raise SystemExit("console-check: the history does not show who cancelled: " + history[:400])
        if page.locator("#action-cancel").count():
            raise SystemExit("console-check: cancel is still offered for a compensated run")
        step("the run turned compensated on screen without a reload")
        page.screenshot(path=os.path.join(folder, "run.png"), full_page=True)

        # The stuck run: its failed step was done by hand, so the operator resolves it and the run goes on.
        page.goto(url + "#/runs/" + stuck)
        page.wait_for_selector('h2 .badge[data-status="stuck"]', timeout=timeout)
        page.click("#action-resolve")
        page.wait_for_selector("#action-dialog[open]", timeout=timeout)
        options = page.locator("#action-step option").all_inner_texts()
        if options != ["ship-order"]:
            raise SystemExit(f"console-check: the resolve dialog offers {options}, expected the failed step ship-order only")
        if not page.locator("#action-response").is_visible():
            raise SystemExit("console-check: the resolve dialog of a stuck run has no response field")
        page.fill("#action-note", "shipped by the courier desk")
        page.fill("#action-by", "console-check")
        page.click("#action-confirm")
        page.wait_for_selector('h2 .badge[data-status="completed"]', timeout=timeout)
        page.wait_for_selector('#steps tr[data-step="ship-order"] .badge[data-status="resolved"]', timeout=timeout)
        page.wait_for_selector('#graph g[data-step="ship-order"][data-status="resolved"]', timeout=timeout)
        note = page.locator('#steps tr[data-step="ship-order"] .resolution').inner_text()
        if note != "done by hand by console-check: shipped by the courier desk":
            raise SystemExit(f"console-check: the resolved step says {note!r}")
        if page.locator("#action-resolve").count() or page.locator("#action-retry").count():
            raise SystemExit("console-check: resolve or retry is still offered for a completed run")
        step("the stuck step shows as resolved by hand and the run completed")
        page.screenshot(path=os.path.join(folder, "run-resolved.png"), full_page=True)

        # The refund waiting for a manager: listed among the runs waiting for a person, approved from its page.
        page.goto(url + "#/runs")
        page.click("#filter-waiting")
        page.wait_for_selector(f'#runs-body tr[data-run="{waiting}"]', timeout=timeout)
        listed = page.locator("#runs-body tr").count()
        if listed != 1:
            raise SystemExit(f"console-check: {listed} runs listed as waiting for a person, expected the refund only")
        step("the refund is listed among the runs waiting for a person")
        page.screenshot(path=os.path.join(folder, "runs-waiting.png"), full_page=True)
        page.click(f'#runs-body tr[data-run="{waiting}"] a')
        page.wait_for_selector('#steps tr[data-step="approve-refund"] .badge[data-status="waiting"]', timeout=timeout)
        wait = page.locator('#steps tr[data-step="approve-refund"] .wait').inner_text()
        if "waiting for a person's decision" not in wait or "Refund 620 EUR for order order-1001 (arrived broken)?" not in wait:
            raise SystemExit(f"console-check: the waiting step says {wait!r}")
        if page.locator('#timeline rect[data-wait="approval"]').count() != 1:
            raise SystemExit("console-check: the timeline does not show the wait for a person")
        page.screenshot(path=os.path.join(folder, "run-waiting.png"), full_page=True)
        page.click("#action-approve")
        page.wait_for_selector("#action-dialog[open]", timeout=timeout)
        options = page.locator("#action-step option").all_inner_texts()
        if options != ["approve-refund"]:
            raise SystemExit(f"console-check: the approve dialog offers {options}, expected approve-refund only")
        page.fill("#action-note", "receipt checked")
        page.fill("#action-by", "console-check")
        page.click("#action-confirm")
        page.wait_for_selector('h2 .badge[data-status="completed"]', timeout=timeout)
        decided = page.locator('#steps tr[data-step="approve-refund"] .resolution').inner_text()
        if decided != "approved by console-check: receipt checked":
            raise SystemExit(f"console-check: the approved step says {decided!r}")
        if page.locator("#action-approve").count() or page.locator("#action-reject").count():
            raise SystemExit("console-check: approve or reject is still offered for a completed run")
        step("the refund was approved on screen and completed")

        # Participants: payments (from the server's --participants file) with its closed circuit and its calls.
        page.click("#nav-participants")
        row = page.locator('#participants-body tr[data-participant="payments"]')
        wait_until(page, lambda: row.count() == 1, "payments in the participants table")
        circuit = row.get_attribute("data-circuit")
        sent = int(row.locator("td.sent").inner_text())
        if circuit != "closed" or sent < 2:
            raise SystemExit(f"console-check: payments shows circuit={circuit!r} sent={sent}, expected closed and at least 2")
        step("participants page: payments closed, %d calls sent" % sent)
        page.screenshot(path=os.path.join(folder, "participants.png"), full_page=True)

        # A fan-out: one item out of stock. Its step shows the items' counts, and the items, open since one failed,
        # under it; the graph draws the step as a stack.
        page.goto(url + "#/runs/" + items)
        page.wait_for_selector('#graph rect[data-for-each="input.items"]', timeout=timeout)
        folded = page.locator('#steps tr[data-items-of="reserve-items"] > td > details')
        wait_until(page, lambda: folded.count() == 1 and folded.get_attribute("open") is not None,
                   "the items, unfolded", seen=lambda: page.locator("#steps").inner_html())
        summary = folded.locator(":scope > summary").inner_text()
        if summary != "the items of reserve-items: 3 items: 2 compensated, 1 failed":
            raise SystemExit(f"console-check: the items' summary says {summary!r}")
        failed = folded.locator('tr[data-step="reserve-items[1]"] .badge').inner_text()
        if failed != "failed":
            raise SystemExit(f"console-check: reserve-items[1] shows as {failed!r}, expected failed")
        if page.locator('#steps > tbody > tr[data-step="reserve-items[0]"]').count():
            raise SystemExit("console-check: an item is listed among the saga's steps")
        step("fan-out: 3 items under their step, the failed one shown")
        page.screenshot(path=os.path.join(folder, "run-items.png"), full_page=True)

        # Definitions: the saga's graph.
        page.goto(url + "#/definitions/checkout")
        page.wait_for_selector('[data-definition="checkout@1"] #graph g[data-step="ship-order"]', timeout=timeout)
        step("definitions page: checkout's graph drawn")
        page.screenshot(path=os.path.join(folder, "definitions.png"), full_page=True)

        if errors:
            raise SystemExit("console-check: the page raised errors: " + "; ".join(errors))
        browser.close()
    step("all checks passed; screenshots in " + folder)


if __name__ == "__main__":
    main()
