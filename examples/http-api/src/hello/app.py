import json
import os


def handler(event, context):
    """A function URL's request (payload format 2.0) in, an HTTP response out."""
    name = (event.get("queryStringParameters") or {}).get("name", "world")
    body = {"message": f"{os.environ['GREETING']}, {name}!{os.environ.get('SUFFIX', '')}",
            "stage": os.environ["STAGE"], "path": event.get("rawPath")}
    return {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": json.dumps(body)}
