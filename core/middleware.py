"""Where a request comes from, for the audit trail and the login lockout.

`client_ip` is the one answer to "from which address": the audit trail records it and
django-axes locks out by it (settings.AXES_CLIENT_IP_CALLABLE). Behind XRS_PROXY_COUNT
trusted reverse proxies, each proxy appends the address it received the request from to
X-Forwarded-For, so the client is the entry XRS_PROXY_COUNT places from the right; anything
further left was written by the client and is not trusted. With no proxy (0), the header is
ignored and the socket's peer address (REMOTE_ADDR) is the client.

`AuditContextMiddleware` keeps the current request's client address in a context variable
while the request runs, so that every audit row written during it (`core.audit.record`)
says from where, without each service being handed the request.
"""

from __future__ import annotations

import ipaddress
from contextvars import ContextVar

from django.conf import settings

_request_ip: ContextVar[str | None] = ContextVar("xrs_request_ip", default=None)


def _valid_ip(value: str | None) -> str | None:
    if not value:
        return None
    value = value.strip()
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def client_ip(request) -> str | None:
    """The client's address, honouring settings.XRS_PROXY_COUNT; None when unknown."""
    proxies = getattr(settings, "XRS_PROXY_COUNT", 0)
    meta = getattr(request, "META", {})
    if proxies:
        hops = [hop.strip() for hop in meta.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
        if hops:
            # Fewer hops than proxies: the leftmost one was still appended by a trusted proxy.
            address = _valid_ip(hops[-min(proxies, len(hops))])
            if address:
                return address
    return _valid_ip(meta.get("REMOTE_ADDR"))


def current_ip() -> str | None:
    """The client address of the request being handled in this context, if any."""
    return _request_ip.get()


class AuditContextMiddleware:
    """Makes the request's client address available to `core.audit.record`."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = _request_ip.set(client_ip(request))
        try:
            return self.get_response(request)
        finally:
            _request_ip.reset(token)
