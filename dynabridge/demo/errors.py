"""The one exception the demo stops on: its message is what the user reads."""

from __future__ import annotations


class DemoError(Exception):
    """The demo cannot go on; the message says what failed and where to look."""
