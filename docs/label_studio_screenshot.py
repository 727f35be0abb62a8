"""Screenshot of Label Studio's Data Manager sorted by the backend's prediction score.

Makes ``docs/_static/label_studio_data_manager.png`` for docs/label_studio.rst
from a running Label Studio whose project is connected to
``skal-cxr label-studio-backend`` and has its predictions retrieved. With
an API token it first adds the Data Manager tab "Label next": the tasks not
yet annotated, sorted by prediction score (ascending), showing the score, the
predictions and the image. Uses Playwright with Debian's Chromium (no
browser download)::

    python docs/label_studio_screenshot.py --url http://127.0.0.1:8080 \\
        --username admin@example.com --password ... --token ... --project 1
"""

import argparse
import os
import shutil
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

OUT = Path(__file__).parent / "_static" / "label_studio_data_manager.png"
#: Data Manager columns left out of the screenshot.
HIDDEN = [
    f"tasks:{c}"
    for c in (
        "inner_id completed_at cancelled_annotations total_predictions annotators "
        "annotations_results annotations_ids predictions_model_versions file_upload "
        "storage_filename created_at updated_at updated_by avg_lead_time draft_exists "
        "comment_count unresolved_comment_count last_comment_updated_at comment_authors "
        "total_annotations"
    ).split()
]


def label_next_view(url, token, project):
    """Add the "Label next" tab (unannotated tasks by prediction score); return its id."""
    data = {
        "title": "Label next",
        "ordering": ["tasks:predictions_score"],
        "hiddenColumns": {"explore": HIDDEN, "labeling": HIDDEN},
        "filters": {
            "conjunction": "and",
            "items": [
                {
                    "filter": "filter:tasks:total_annotations",
                    "operator": "equal",
                    "type": "Number",
                    "value": 0,
                }
            ],
        },
    }
    r = httpx.post(
        f"{url}/api/dm/views",
        json={"project": project, "data": data},
        headers={"Authorization": f"Token {token}"},
        timeout=60,
    )
    r.raise_for_status()
    return r.json()["id"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="Label Studio's URL")
    parser.add_argument("--username", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--project", type=int, required=True)
    parser.add_argument("--token", help="an API token: add the 'Label next' tab")
    parser.add_argument("--view", type=int, help="a Data Manager tab (default: 'Label next')")
    parser.add_argument("--output", default=str(OUT))
    args = parser.parse_args(argv)
    if args.view is None and args.token:
        args.view = label_next_view(args.url, args.token, args.project)
    chromium = (
        os.environ.get("SKAL_CXR_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    )
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
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
