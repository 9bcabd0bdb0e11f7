"""Persistence: function metadata, async events and logs (SQLite by default) and code blobs (files by default)."""
