"""Tests of the topic contract (bridge/contract)."""
