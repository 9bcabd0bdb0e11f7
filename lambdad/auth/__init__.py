"""Authentication of API callers: AWS Signature Version 4."""
