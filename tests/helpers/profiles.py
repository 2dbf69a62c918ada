"""The profile form filled in as a browser posts it, and profiles made directly, for the
tests of the profile pages."""

from models import Profile, db
from tests.conftest import html
from tests.helpers.trees import write


def profile_home(tmp_path):
    """ada's home with a photo in it, and an empty folder for the backups beside it."""
    write(tmp_path / "home" / "ada" / "Photos" / "cat.jpg", "meow")
    (tmp_path / "backups").mkdir()
    return tmp_path / "home" / "ada"


def form(home, **fields):
    return {"name": "Photos", "sources": f"{home / 'Photos'}\n", "excludes": "*.tmp\n",
            "destination": str(home.parent.parent / "backups"), "mode": "snapshot",
            "max_parallel": "4", "bandwidth": "", "retries": "3", **fields}


def profiles() -> list[Profile]:
    with db.connection_context():
        return list(Profile.select().order_by(Profile.id))


def messages(response) -> dict[str, str]:
    """Each field's message, by field id, as shown beside it."""
    page = html(response)
    return {p["id"].removesuffix("-msg"): p.text.strip()
            for p in page.select(".has-error .field-msg, fieldset.has-error .field-msg")}


def make(home, **fields) -> Profile:
    with db.connection_context():
        values = {"name": "Photos", "slug": "photos", "sources": [str(home / "Photos")],
                  "destination": str(home.parent.parent / "backups"), **fields}
        return Profile.create(**values)
