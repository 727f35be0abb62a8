"""The user guide's code examples run and print what the pages say."""

import doctest
from pathlib import Path

import pytest

PAGES = [Path(__file__).resolve().parents[1] / "docs" / "user_guide" / "custom_strategy.rst"]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.stem)
def test_user_guide_page_examples(page):
    result = doctest.testfile(
        str(page), module_relative=False, optionflags=doctest.NORMALIZE_WHITESPACE
    )
    assert result.attempted > 5 and result.failed == 0
