"""Web sessions end after the site's inactivity timeout (SPEC §1)."""

from __future__ import annotations

from apps.siteconfig.models import SiteSettings


class SessionTimeoutMiddleware:
    """Give every logged-in session the site's timeout, counted from this request.

    The session is saved on every request (``SESSION_SAVE_EVERY_REQUEST``), so
    its expiry moves with activity and a session left alone for longer than
    ``session_timeout_s`` is gone. Applied after the view, so the request that
    logs in gets it too. It goes for the admin's sessions as well.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            request.session.set_expiry(SiteSettings.load().session_timeout_s)
        return response
