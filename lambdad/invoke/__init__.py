"""Invocation: resolving what to run, admitting it, running it in an environment, and the async event queue."""
