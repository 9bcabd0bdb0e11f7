"""Execution environments: launching, containing, invoking, pooling and recycling them."""
