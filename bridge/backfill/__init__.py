"""Backfill: a table's existing items into its topic as SNAPSHOT events, while the stream flows.

Pure modules (``plan``, ``rate``, ``tombstones``, ``display``) decide; adapters (``scan``,
``progress``, ``search_check``) talk to DynamoDB and the search engine; ``runner`` is the loop.
"""
