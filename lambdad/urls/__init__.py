"""Lambda function URLs: their configurations (``configs.py``), the HTTP front that serves them (``front.py``),
payload format 2.0 (``payload.py``) and CORS (``cors.py``)."""
