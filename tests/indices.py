"""Dropping what a test's table left in a search engine: the alias's generations, a concrete
index of the alias's name (an older layout), and the table's index template."""

from __future__ import annotations

import contextlib
import urllib.error
import urllib.request


def drop_table_indices(url: str, alias: str) -> None:
    for path in (f"{alias}~*", alias, f"_index_template/dynabridge.{alias}"):
        request = urllib.request.Request(f"{url}/{path}", method="DELETE")  # noqa: S310 - local
        with contextlib.suppress(urllib.error.HTTPError):
            urllib.request.urlopen(request, timeout=30).close()  # noqa: S310
