"""Schedules: expressions (``expressions.py``), the durable firing engine every scheduled feature uses
(``timer.py``), and EventBridge Scheduler's API on top of them (``api.py``, ``service.py``)."""
