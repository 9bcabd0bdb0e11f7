"""The web console: a thin client of the endpoint's own APIs, served under ``/console/`` on the API's port.

- sessions.py: the session cookie, its CSRF token and the same-origin rule;
- calls.py: an API operation called in-process as the session's principal (routed, parsed, authorized and
  answered exactly as a signed request would be);
- code.py: a function's zip as editable files, and back; the blank templates;
- front.py: the HTTP routes (static assets, sign-in and out, the calls);
- static/: the browser's side (plain HTML/CSS/JS, and editor.js: CodeMirror 6, bundled by build.mjs).
"""
