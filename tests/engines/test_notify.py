"""Target URLs hold secrets: every page, socket fragment, error and log line shows them
masked, for each family of target docs/system.md names."""

import pytest

from jobs.engines import notify

# (URL, the secrets in it): Discord, Telegram, ntfy, Gotify, e-mail, and the generic
# webhooks, whose path and custom headers Apprise's privacy mode alone leaves readable.
FAMILIES = [
    ("discord://4174216298/JHMHI8qBe7bk2ZwO5U711o3dV_js", ["4174216298", "JHMHI8qBe7bk2ZwO5U711o3dV_js"]),
    ("tgram://123456789:AABCdefGhIjkl0123/987654", ["123456789", "AABCdefGhIjkl0123"]),
    ("ntfy://ada:pa55word@ntfy.example/family-topic-8b1f", ["pa55word", "family-topic-8b1f"]),
    ("gotify://gotify.example/AbCdEfGh12345", ["AbCdEfGh12345"]),
    ("mailto://ada:mailpass77@example.com?to=otto@example.com", ["mailpass77"]),
    ("json://hook.example:8080/hooks/s3cr3t-token-path?:Authorization=Bearer%20abcdef123",
     ["s3cr3t-token-path", "abcdef123"]),
    ("form://user:formpw@hook.example/api/KEY12345?apikey=qwerty987", ["formpw", "KEY12345", "qwerty987"]),
    ("xmls://hook.example/x/SECRETXML99", ["SECRETXML99"]),
]


@pytest.mark.parametrize(("url", "secrets"), FAMILIES, ids=[url.split(":")[0] for url, _ in FAMILIES])
def test_a_shown_url_keeps_no_secret(url, secrets):
    shown = notify.shown_url(url)
    assert shown.split("://")[0] == url.split("://")[0]
    for secret in secrets:
        assert secret not in shown, shown


@pytest.mark.parametrize(("url", "secrets"), FAMILIES, ids=[url.split(":")[0] for url, _ in FAMILIES])
def test_an_error_that_repeats_the_url_is_scrubbed(url, secrets):
    said = notify.scrub(f"Failed to send to {url}: 401 for {secrets[-1]}", url)
    for secret in secrets:
        assert secret not in said, said
    assert said.startswith("Failed to send to ")
