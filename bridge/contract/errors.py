"""The topic contract's exceptions, raised at the one boundary where bytes or text become events.

ContractError               bytes, text, names or values that break the topic contract: the
                            record's own fault (a consumer dead-letters it)
SchemaLookupError           the schema a record names cannot be had now: NOT the record's fault
 ├── SchemaRegistryError    the registry was unreachable or refused (``status``: its HTTP
 │                          status, None when it did not answer); retry, or fix credentials
 └── UnknownSchema          a schema fingerprint or id this reader (or the registry) does not
                            know: a newer writer was deployed first; upgrade the reader
"""

from __future__ import annotations


class ContractError(Exception):
    """A value, key, topic name or frame breaks the topic contract; the message says how."""


class SchemaLookupError(Exception):
    """The writer schema of a record cannot be looked up; the record itself may be fine."""


class SchemaRegistryError(SchemaLookupError):
    """The Confluent Schema Registry could not be reached or answered with an error."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status

    @property
    def refused(self) -> bool:
        """401/403: credentials or permissions; waiting will not help."""
        return self.status in (401, 403)


class UnknownSchema(SchemaLookupError):  # noqa: N818 - a condition, like the registry's 404
    """No schema is known for the fingerprint or id the record carries."""
