"""The Lambda Runtime API (2018-06-01), served to each execution environment on its own endpoint."""
