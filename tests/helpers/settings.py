"""A test's own settings: this process's one settings object, changed for one test."""

import dataclasses

import config


def use_settings(monkeypatch, **changes) -> config.Settings:
    """This process's settings with `changes`, for this test only (undone after it)."""
    changed = dataclasses.replace(config.current(), **changes)
    monkeypatch.setattr(config, "_current", changed)
    return changed
