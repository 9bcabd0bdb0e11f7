"""S3 object events from S3-compatible stores (MinIO, Ceph RGW, SeaweedFS, Garage): a function's notification
endpoint, its filters, and the webhook that turns each store record into Lambda's S3 event (docs/events.md)."""
