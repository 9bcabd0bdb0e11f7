"""Function logs: log groups and streams, batched off the invoke path into the metadata store."""
