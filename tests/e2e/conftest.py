import pytest

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    # Debian's Chromium, never a downloaded one; the flags keep it off the (closed) internet.
    return {**browser_type_launch_args, "executable_path": CHROMIUM,
            "args": ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update",
                     "--disable-sync"]}


@pytest.fixture
def console_errors(page):
    """Errors the page logs (a CSP violation, a script error, a missing static file).

    Chromium also logs every 4xx answer as "Failed to load resource"; the tests ask for those
    on purpose (a viewer opening an admin page), so they count only for static files.
    """
    errors: list[str] = []

    def on_console(message):
        deliberate = (message.text.startswith("Failed to load resource")
                      and "/static/" not in message.location.get("url", ""))
        if message.type == "error" and not deliberate:
            errors.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors
