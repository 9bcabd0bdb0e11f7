import json


def handler(event, context):
    """Handle a batch of SQS messages; a message whose body has "fail": true is reported as failed, so SQS
    delivers it again, and after the queue's maxReceiveCount moves it to the dead-letter queue."""
    failures = []
    for record in event.get("Records", []):
        body = json.loads(record["body"])
        if body.get("fail"):
            failures.append({"itemIdentifier": record["messageId"]})
            continue
        print(json.dumps({"processed": body, "messageId": record["messageId"]}))
    return {"batchItemFailures": failures}
