#!/usr/bin/env python3
"""Times the console's first page against a running `skald serve` (for the README's figure): from navigation to the
runs table and the counts drawn, in headless Chromium, N loads, each in a fresh page.

    scripts/console-timing.py URL [LOADS]
"""
import shutil
import statistics
import sys
import time

from playwright.sync_api import sync_playwright

url = sys.argv[1]
loads = int(sys.argv[2]) if len(sys.argv) > 2 else 10
chromium = shutil.which("chromium") or shutil.which("chromium-browser")
with sync_playwright() as playwright:
    browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
    times = []
    for _ in range(loads):
        page = browser.new_page()
        started = time.perf_counter()
        page.goto(url)
        page.wait_for_selector("#runs-body tr")
        page.wait_for_selector('.count[data-status="completed"]')
        times.append((time.perf_counter() - started) * 1000)
        rows = page.locator("#runs-body tr").count()
        total = page.locator(".count").last.locator("b").inner_text()
        page.close()
    browser.close()
print(f"console first page: {loads} loads, {rows} rows shown of {total} runs: median {statistics.median(times):.0f} ms, "
      f"slowest {max(times):.0f} ms")
