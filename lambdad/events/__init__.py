"""EventBridge (``events``): event buses, rules, targets and PutEvents routing to Lambda functions."""
