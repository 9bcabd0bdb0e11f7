"""lambdad: a self-hosted serverless function platform that speaks the AWS Lambda APIs."""

__version__ = "0.1.0"
