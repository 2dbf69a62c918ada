"""Page through a query; links keep the page's other query parameters."""

from __future__ import annotations

from dataclasses import dataclass

from flask import request, url_for

from views.forms import whole_number


@dataclass(frozen=True)
class Page:
    items: list
    number: int
    size: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.pages

    @property
    def first_index(self) -> int:
        return (self.number - 1) * self.size + 1 if self.total else 0

    @property
    def last_index(self) -> int:
        return min(self.number * self.size, self.total)

    def url(self, number: int) -> str:
        return url_with(page=str(number))


def url_with(**changes: str | None) -> str:
    """This page's address with its query changed: each named parameter set, or dropped
    when None; the others kept."""
    args = request.args.to_dict()
    for name, value in changes.items():
        if value is None:
            args.pop(name, None)
        else:
            args[name] = value
    return url_for(request.endpoint, **(request.view_args or {}), **args)


def paginate(query, raw_number: str | None, size: int, total: int | None = None) -> Page:
    """A page of `query`; a missing or malformed page number means the first page. Pass
    `total` when it is already known, to save counting the rows again."""
    number = whole_number(raw_number, high=10**9) or 1
    total = query.count() if total is None else total
    number = min(number, max(1, -(-total // size)))
    return Page(items=list(query.paginate(number, size)), number=number, size=size, total=total)
