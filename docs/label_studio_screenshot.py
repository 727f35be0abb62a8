"""Screenshot of Label Studio's Data Manager sorted by the backend's prediction score.

Makes ``docs/_static/label_studio_data_manager.png`` for docs/label_studio.rst
from a running Label Studio whose project is connected to
``skal-cxr label-studio-backend`` and has its predictions retrieved. Uses
Playwright with Debian's Chromium (no browser download)::

    python docs/label_studio_screenshot.py --url http://127.0.0.1:8080 \\
        --username admin@example.com --password ... --project 1 --view 1
"""

import argparse
import os
import shutil
from pathlib import Path

from playwright.sync_api import sync_playwright

OUT = Path(__file__).parent / "_static" / "label_studio_data_manager.png"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="Label Studio's URL")
    parser.add_argument("--username", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--project", type=int, required=True)
    parser.add_argument("--view", type=int, help="a Data Manager tab sorted by prediction score")
    parser.add_argument("--output", default=str(OUT))
    args = parser.parse_args(argv)
    chromium = os.environ.get("SKAL_CXR_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 800})
        page.goto(f"{args.url}/user/login/")
        page.fill("input[name=email]", args.username)
        page.fill("input[name=password]", args.password)
        page.click("button[type=submit]")
        page.wait_for_url(lambda url: "/user/login" not in url, timeout=60_000)
        tab = f"?tab={args.view}" if args.view else ""
        page.goto(f"{args.url}/projects/{args.project}/data{tab}")
        page.wait_for_selector("text=Prediction score", timeout=60_000)
        page.wait_for_timeout(3000)  # the thumbnails
        page.screenshot(path=args.output)
        browser.close()
    print(args.output)


if __name__ == "__main__":
    main()
