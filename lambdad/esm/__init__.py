"""Event source mappings: sources a poller reads batches from to invoke functions."""
