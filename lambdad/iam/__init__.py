"""IAM and STS for lambdad: users, groups, roles, policies and sessions (``service.py``, ``sts.py``), the AWS managed
policies Lambda users attach (``managed.py``), and the policy evaluator every API asks (``policy.py``)."""
