"""Functions: their configuration values, validation, code packages and the service that manages them."""
