"""Logins, logouts, failed logins and lockouts in the audit trail.

This is the one place the project uses signals, and on purpose: authentication happens
inside Django's and django-axes' own code (the login and logout views, the admin's login,
`authenticate()` called by DRF's BasicAuthentication, `login()` after an accepted
invitation), which calls no service of ours. Their signals (`user_logged_in`,
`user_logged_out`, `user_login_failed`, axes' `user_locked_out`) are the hooks they offer.
Every write of our own is still audited by its service, not by signals.

Each receiver writes one row in its own transaction, with the client address of the request
(core.middleware.client_ip). Passwords never reach the trail: Django hands receivers of
`user_login_failed` cleansed credentials, and only the attempted username is kept.
"""

from __future__ import annotations

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db import transaction

from core import audit
from core.middleware import client_ip

MAX_USERNAME = 150


def _ip(request) -> str | None:
    return client_ip(request) if request is not None else None


def _attempted(value) -> str:
    return str(value or "")[:MAX_USERNAME]


def on_logged_in(sender, request, user, **kwargs) -> None:
    with transaction.atomic():
        audit.record(acting_user=user, action="auth.login", ip=_ip(request))


def on_logged_out(sender, request, user, **kwargs) -> None:
    if user is None:  # logging out without a session: nothing happened
        return
    with transaction.atomic():
        audit.record(acting_user=user, action="auth.logout", ip=_ip(request))


def on_login_failed(sender, credentials, request=None, **kwargs) -> None:
    username = _attempted(credentials.get("username"))
    with transaction.atomic():
        audit.record(
            acting_user=None, actor_repr="anonymous", action="auth.login_failed", ip=_ip(request),
            after={
                "username": username,
                # Set by django-axes (whose receiver runs first) when the attempt was refused
                # because the username is locked out from this address.
                "locked_out": bool(getattr(request, "axes_locked_out", False)),
            },
        )


def on_locked_out(sender, request=None, username=None, ip_address=None, **kwargs) -> None:
    with transaction.atomic():
        audit.record(
            acting_user=None, actor_repr="anonymous", action="auth.locked_out",
            ip=_ip(request) or ip_address, after={"username": _attempted(username)},
        )


def connect() -> None:
    """Called once from CoreConfig.ready()."""
    from axes.signals import user_locked_out

    user_logged_in.connect(on_logged_in, dispatch_uid="xrs-audit-login")
    user_logged_out.connect(on_logged_out, dispatch_uid="xrs-audit-logout")
    user_login_failed.connect(on_login_failed, dispatch_uid="xrs-audit-login-failed")
    user_locked_out.connect(on_locked_out, dispatch_uid="xrs-audit-locked-out")
