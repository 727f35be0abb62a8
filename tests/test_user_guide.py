"""The user guide's code examples run and print what the pages say."""

import doctest
from pathlib import Path

import pytest

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "user_guide"
PAGES = [
    GUIDE / "custom_strategy.rst",
    # trains a small contrastive encoder and runs an active-learning loop
    pytest.param(GUIDE / "frozen_view.rst", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: Path(p).stem)
def test_user_guide_page_examples(page):
    result = doctest.testfile(
        str(page), module_relative=False, optionflags=doctest.NORMALIZE_WHITESPACE
    )
    assert result.attempted > 5 and result.failed == 0
