"""The importer's slug allocator: suffixes one above the highest taken, and a memory of
bases that stays bounded by forgetting the cheapest ones to read again."""

from __future__ import annotations

import pytest

from app.transfers import importer
from app.transfers.importer import SlugAllocator


def test_slugs_go_on_from_the_highest_suffix_taken():
    allocator = SlugAllocator()
    allocator.learn({"ana-smith": 3, "bo-li": 0})
    slugs, after = allocator.allocate(["ana-smith", "bo-li", "bo-li", "ana-smith"])
    assert slugs == ["ana-smith-4", "bo-li", "bo-li-2", "ana-smith-5"]
    assert after == {"ana-smith": 5, "bo-li": 2}


def test_over_its_limit_it_forgets_the_bases_with_the_fewest_slugs(
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setattr(importer, "SLUG_CACHE_LIMIT", 4)
    allocator = SlugAllocator()
    allocator.learn({"common": 900, "often": 40, "once": 1, "twice": 2, "never": 0})
    # The next chunk's bases: the ones forgotten must be read from the database again.
    missing = allocator.missing(["common", "often", "once", "fresh"])
    assert missing == ["fresh", "once"]
    assert allocator.highest == {"common": 900, "often": 40}
    allocator.learn({"fresh": 0, "once": 1})
    slugs, _ = allocator.allocate(["common", "once", "fresh"])
    assert slugs == ["common-901", "once-2", "fresh"]


def test_reserved_words_are_never_a_slug():
    allocator = SlugAllocator()
    allocator.learn({"new": 0})  # /customers/new is a page
    assert allocator.allocate(["new"])[0] == ["new-2"]
