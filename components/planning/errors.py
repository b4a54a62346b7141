"""The pure core's one error shape: a message and the config key path a user changes to fix it.

The config layer turns any of these into its one-line ConfigError (file, key, value, fix); the
components turn them into their argument errors. Each kind keeps its own class so callers can tell a
hardware misfit from an unsupported release or a zone AWS does not offer.
"""

from __future__ import annotations


class KeyedError(ValueError):
    """`message` says what is wrong and how to fix it; `key` is the config key path to change."""

    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key = key
        self.message = message
