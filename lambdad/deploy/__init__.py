"""``lambdad deploy``: SAM templates applied to a running lambdad through its APIs, recorded as stacks.

The client side (template.py, intrinsics.py, resources.py, planner.py, engine.py, code.py, builder.py, watch.py)
runs in the ``lambdad deploy`` command and speaks only the AWS APIs (boto3) and the stacks API; the server side is
stacks_api.py, which serves that stacks API from the store. docs/deploy.md tells the whole of it.
"""
