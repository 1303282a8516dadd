"""The API's interactive docs (Swagger UI at /api/docs/, ReDoc at /api/redoc/), served from this
site only.

The pages' assets come from drf-spectacular-sidecar, and the ReDoc template drops its Google Fonts
links (templates/drf_spectacular/redoc.html). ReDoc's bundle still shows a logo from its vendor's
CDN; the Content-Security-Policy below keeps the browser from fetching anything off-site, so the
docs work offline and tell no third party who reads them.
"""

from __future__ import annotations

from typing import Any

from csp.constants import SELF, UNSAFE_INLINE
from django.http import HttpRequest, HttpResponseBase
from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerView

# Inline scripts and styles: both pages boot from an inline <script>; ReDoc styles inline and
# builds its search worker from a blob. The rest of the site's policy (settings) stays.
DOCS_CSP: dict[str, Any] = {
    "script-src": [SELF, UNSAFE_INLINE],
    "style-src": [SELF, UNSAFE_INLINE],
    "img-src": [SELF, "data:"],
    "font-src": [SELF, "data:"],
    "worker-src": [SELF, "blob:"],
}


class _SameSiteOnly:
    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        response = super().dispatch(request, *args, **kwargs)  # type: ignore[misc]
        # Read by django-csp's middleware (what its @csp_replace decorator sets).
        response._csp_replace = DOCS_CSP
        return response


class SwaggerView(_SameSiteOnly, SpectacularSwaggerView):
    pass


class RedocView(_SameSiteOnly, SpectacularRedocView):
    pass
