"""The switch operator's web console, served by central under ``/console/``.

Server-rendered HTML (no script, no build step, nothing from another origin): log in
with the operator's key and secret; register DFSPs (their credentials shown once),
pause and unpause them (the same code path as ``POST /participants/{name}/pause``: every
component's pause hook runs), set or clear their net debit caps; live positions; close
a settlement window and download its report; the fraud reports and blacklist; verify
the forensic log and show one transfer's path.

Security: a login opens a session kept in this process's memory with an idle expiry
(``central.console.sessions``), whose random token is an HttpOnly, SameSite=Strict
cookie scoped to ``/console``; every POST carries the session's CSRF token. Only the
operator's key and secret (compared in constant time) open a session; a DFSP's
credentials do not, and a request carrying them is refused.
"""

from central.console.routes import console_routes

__all__ = ["console_routes"]
