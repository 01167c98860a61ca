"""A limit's count of one try can be taken back (the try ended in the portal's own failure)."""
from __future__ import annotations

from portal.ratelimit import AddressLimiter, RateLimiter


def test_a_try_taken_back_is_uncounted_and_only_that_one(redis_client):
    limiter = RateLimiter(redis_client, "3 per 15 minutes", scope="test")
    failed = limiter.count("ada")
    assert limiter.count("ada") is not None
    failed.take_back()
    failed.take_back()        # twice is once: the other try stays counted
    assert limiter.count("ada") is not None and limiter.count("ada") is not None
    assert limiter.count("ada") is None and not limiter.test("ada")


def test_a_try_whose_count_was_cleared_since_takes_back_nothing(redis_client):
    limiter = RateLimiter(redis_client, "3 per 15 minutes", scope="test")
    failed = limiter.count("ada")
    limiter.clear("ada")      # a right password meanwhile
    for _ in range(3):
        assert limiter.count("ada") is not None
    failed.take_back()
    assert not limiter.test("ada")


def test_an_address_is_taken_back_where_it_was_counted(redis_client):
    limiter = AddressLimiter(redis_client, "1 per 15 minutes", scope="test-address")
    limiter.count("2001:db8:1:2::7").take_back()
    assert limiter.test("2001:db8:1:2::9")
