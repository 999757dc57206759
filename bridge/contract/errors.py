"""The topic contract's exceptions, raised at the one boundary where bytes or text become events.

ContractError               bytes, text, names or values that break the topic contract
 └── SchemaRegistryError    the schema registry was unreachable or refused a request
"""

from __future__ import annotations


class ContractError(Exception):
    """A value, key, topic name or frame breaks the topic contract; the message says how."""


class SchemaRegistryError(ContractError):
    """The Confluent Schema Registry could not be reached or answered with an error."""
