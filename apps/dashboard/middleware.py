"""Web sessions end after the site's inactivity timeout (SPEC §1)."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from apps.siteconfig.models import SiteSettings

#: Sent by the pages' script when the live feed makes it fetch a page again.
LIVE_REFRESH_HEADER = "HTTP_X_EVCE_LIVE"


def is_live_refresh(request) -> bool:
    return request.META.get(LIVE_REFRESH_HEADER) == "1"


class SessionTimeoutMiddleware:
    """Give every logged-in session the site's timeout, counted from this request.

    The expiry is stored as a date: the session is saved on every request
    (``SESSION_SAVE_EVERY_REQUEST``) and a request that does not move it
    keeps it. A user's own request moves it (``session_timeout_s`` from now);
    a page refreshing itself because the live feed said so does not, so a
    dashboard left open still times out. Applied after the view, so the
    request that logs in gets it too. It goes for the admin's sessions as well.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and not is_live_refresh(request):
            timeout_s = SiteSettings.load().session_timeout_s
            request.session.set_expiry(timezone.now() + timedelta(seconds=timeout_s))
        return response
