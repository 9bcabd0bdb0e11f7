import json
import os
import time


def handler(event, context):
    """One run of the job: the rule's fixed input (or a scheduled event) in, a summary out (and in the log)."""
    summary = {"job": os.environ["JOB_NAME"], "task": event.get("task", "scheduled"), "ran_at": int(time.time())}
    print(json.dumps(summary))
    return summary
