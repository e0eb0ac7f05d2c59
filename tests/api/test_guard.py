"""The API's token check and call limits, as pure functions of their inputs and a clock."""

from __future__ import annotations

import pytest

from api.guard import ApiConfig, ApiConfigError, CallLimiter, bearer_token, token_matches

TOKEN = "a-token-of-sixteen-chars"


@pytest.mark.parametrize(
    ("header", "token"),
    [
        (None, None),
        ("", None),
        ("Bearer", None),
        ("Bearer   ", None),
        ("Basic abc", None),
        (TOKEN, None),
        (f"Bearer {TOKEN}", TOKEN),
        (f"bearer {TOKEN} ", TOKEN),
    ],
)
def test_bearer_token(header, token):
    assert bearer_token(header) == token


def test_token_matches_only_the_token():
    assert token_matches(TOKEN, TOKEN)
    assert not token_matches(TOKEN[:-1], TOKEN)
    assert not token_matches(TOKEN + "x", TOKEN)
    assert not token_matches(None, TOKEN)
    assert not token_matches("", "")  # no token configured lets nobody in


def test_config_from_env():
    config = ApiConfig.from_env(
        {
            "REALTIME_API_TOKEN": f" {TOKEN} ",
            "REALTIME_API_ORIGINS": "https://demo.example, http://localhost:3000/",
            "REALTIME_API_CALLS_PER_MINUTE": "3",
        }
    )
    assert config.enabled and config.token == TOKEN
    assert config.origins == ("https://demo.example", "http://localhost:3000")
    assert (config.calls_per_minute, config.max_concurrent) == (3, 4)
    assert TOKEN not in repr(config)
    assert not ApiConfig.from_env({}).enabled


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"REALTIME_API_TOKEN": "short"}, "at least 16"),
        ({"REALTIME_API_ORIGINS": "*"}, "not '*'"),
        ({"REALTIME_API_ORIGINS": "demo.example"}, "full origins"),
        ({"REALTIME_API_CALLS_PER_MINUTE": "ten"}, "whole number"),
        ({"REALTIME_API_MAX_CONCURRENT": "0"}, "at least 1"),
    ],
)
def test_config_errors_name_the_variable(env, says):
    with pytest.raises(ApiConfigError, match=says):
        ApiConfig.from_env(env)


def test_calls_per_minute_slide_with_the_clock():
    limiter = CallLimiter(calls_per_minute=2, max_concurrent=10)
    assert limiter.admit(TOKEN, 0.0).ok
    assert limiter.admit(TOKEN, 10.0).ok
    refused = limiter.admit(TOKEN, 20.0)
    assert not refused.ok and refused.retry_after_s == 40  # the first call leaves the window at 60 s
    assert limiter.admit("another-token-of-16", 20.0).ok  # per token
    assert limiter.admit(TOKEN, 60.0).ok
    assert not limiter.admit(TOKEN, 69.5).ok
    assert limiter.admit(TOKEN, 70.0).ok


def test_live_calls_are_limited_until_they_end():
    limiter = CallLimiter(calls_per_minute=100, max_concurrent=1)
    assert limiter.admit(TOKEN, 0.0).ok
    limiter.started(TOKEN, "call-1")
    busy = limiter.admit(TOKEN, 1.0)
    assert not busy.ok and busy.retry_after_s == 5
    assert limiter.admit(TOKEN, 1.0, concurrent=False).ok  # a minted session holds no call here
    limiter.ended("call-1")
    assert limiter.live(TOKEN) == 0
    assert limiter.admit(TOKEN, 2.0).ok
