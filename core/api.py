"""Shared API pieces: the error format, the JSON parser, pagination and throttles (auth views: auth_api).

Every error the API returns has one shape, whatever raised it (a serializer, a permission check,
a domain service, Django itself)::

    {"error": {"status": 400, "code": "invalid", "message": "Invalid input.",
               "fields": {"starting_capital": ["Ensure this value is greater than or equal to 100."]}}}

`fields` is present only for field errors. Domain errors (`core.errors.DomainError` and its
subclasses in the apps) are answered with the HTTP status the error class carries: 409 when the
resource's state does not allow the command (`InvalidTransition`, `BotBusy`), 400 otherwise (the
message is written for the user), with the exception's name as the code in DRF's style
(`invalid_transition`, `bot_busy`, ...). This module knows no app.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import IO, Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation, TooManyFieldsSent
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.middleware.common import CommonMiddleware
from django.utils.deprecation import MiddlewareMixin
from django.views import defaults
from rest_framework import exceptions, parsers, serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.throttling import AnonRateThrottle, ScopedRateThrottle, UserRateThrottle

from core.errors import DomainError

logger = logging.getLogger(__name__)

# --- Errors -------------------------------------------------------------------------------------

_CODES = {
    400: "invalid",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    415: "unsupported_media_type",
    429: "throttled",
}


def error_body(*, status_code: int, message: str, code: str | None = None, fields: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {
        "status": status_code,
        "code": code or _CODES.get(status_code, "error"),
        "message": message,
    }
    if fields:
        error["fields"] = fields
    return {"error": error}


class Conflict(exceptions.APIException):
    """The request is valid but the resource's state does not allow it (answered with 409)."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state of the resource."
    default_code = "conflict"


def _snake(name: str) -> str:
    """`InvalidTransition` → `invalid_transition`: codes share DRF's style (`not_found`, ...)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, then reshaped into the one error format; domain errors mapped to 400/409."""
    # Imported here: rest_framework.views reads the settings that name this module's throttles.
    from rest_framework.views import exception_handler as drf_exception_handler

    if isinstance(exc, DomainError):
        code = exc.http_status
        return Response(
            error_body(status_code=code, code=_snake(type(exc).__name__), message=str(exc) or "The command failed."),
            status=code,
        )
    if isinstance(exc, DjangoValidationError):
        # A model's full_clean or a service raised Django's ValidationError: the user's input is
        # wrong, never a server fault.
        fields = exc.message_dict if hasattr(exc, "error_dict") else None
        message = "Invalid input." if fields else " ".join(exc.messages)
        exc = exceptions.ValidationError(fields or {"non_field_errors": exc.messages})
        response = drf_exception_handler(exc, context)
        assert response is not None
        response.data = error_body(status_code=400, message=message, fields=fields)
        return response
    if isinstance(exc, SuspiciousOperation):
        # Django's request limits (DATA_UPLOAD_MAX_MEMORY_SIZE, ..._NUMBER_FIELDS) and other
        # malformed requests: the client's fault, answered in the error format.
        logger.info("bad request answered with 400: %r", exc)
        return Response(error_body(status_code=400, message=_bad_request_message(exc)), status=400)
    if isinstance(exc, IntegrityError):
        # A unique constraint raced past the serializer's check (two identical requests at once).
        logger.info("integrity error answered with 409: %s", exc)
        return Response(
            error_body(status_code=409, message="The request conflicts with existing data."),
            status=status.HTTP_409_CONFLICT,
        )
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    response.data = _reshape(response.status_code, exc, response.data)
    return response


def _reshape(status_code: int, exc: Exception, data: Any) -> dict[str, Any]:
    if isinstance(exc, exceptions.ValidationError):
        if isinstance(data, dict):
            non_field = data.get(api_settings.NON_FIELD_ERRORS_KEY)
            message = " ".join(str(m) for m in non_field) if isinstance(non_field, list) else "Invalid input."
            return error_body(status_code=status_code, message=message, fields=data)
        if isinstance(data, list):
            return error_body(status_code=status_code, message=" ".join(str(m) for m in data))
    if isinstance(data, dict) and "detail" in data:
        # simplejwt's errors carry their code beside the detail (`user_not_found`, `password_changed`).
        code = data.get("code") if isinstance(data.get("code"), str) else getattr(data["detail"], "code", None)
        return error_body(
            status_code=status_code, code=code if isinstance(code, str) else None, message=str(data["detail"])
        )
    return error_body(status_code=status_code, message=str(data))


def _bad_request_message(exc: Exception) -> str:
    if isinstance(exc, RequestDataTooBig):
        return f"The request body is too large (at most {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes)."
    if isinstance(exc, TooManyFieldsSent):
        return f"The request has too many fields (at most {settings.DATA_UPLOAD_MAX_NUMBER_FIELDS})."
    return "Bad request."


def handler400(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """JSON for /api/ paths, when a request limit trips outside an API view (in a middleware)."""
    if request.path.startswith("/api/"):
        message = _bad_request_message(exception) if exception is not None else "Bad request."
        return JsonResponse(error_body(status_code=400, message=message), status=400)
    return defaults.bad_request(request, exception or SuspiciousOperation())


def handler404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """JSON for unknown /api/ paths (one error format), the HTML page elsewhere."""
    if request.path.startswith("/api/"):
        message = "Not found."
        if not request.path.endswith("/"):
            message = f"Not found. API paths end with a slash: {request.path}/"
        return JsonResponse(error_body(status_code=404, message=message), status=404)
    return defaults.page_not_found(request, exception or Http404())


def handler500(request: HttpRequest) -> HttpResponse:
    if request.path.startswith("/api/"):
        return JsonResponse(error_body(status_code=500, code="server_error", message="Server error."), status=500)
    return defaults.server_error(request)


class JSONErrors:
    """A view mixin: errors answer in the one JSON error format even where the view also renders
    another format (a CSV export): a client asking for CSV still gets a readable 400 or 404."""

    def finalize_response(self, request: Request, response: Response, *args: Any, **kwargs: Any) -> Response:
        renderer = getattr(request, "accepted_renderer", None)
        if response.status_code >= 400 and renderer is not None and renderer.format not in ("json", "api"):
            request.accepted_renderer = JSONRenderer()
            request.accepted_media_type = JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc, no-any-return]


class ApiCommonMiddleware(CommonMiddleware):
    """Django's CommonMiddleware, without the trailing-slash redirect of an API write.

    `POST /api/bots` would be redirected to `/api/bots/` (clients follow with a GET, the body is
    lost) or, under DEBUG, fail with a RuntimeError (a 500). It gets the JSON 404 instead, which
    says that API paths end with a slash; GETs are still redirected.
    """

    def should_redirect_with_slash(self, request: HttpRequest) -> bool:
        if request.path.startswith("/api/") and request.method not in ("GET", "HEAD"):
            return False
        return bool(super().should_redirect_with_slash(request))


class NotFoundMiddleware(MiddlewareMixin):
    """Unknown /api/ paths answer handler404's JSON under DEBUG too.

    Under DEBUG Django answers a path no URL pattern matches with its HTML technical page, not
    handler404. A catch-all URL pattern would also "match" `/api/bots`, so CommonMiddleware would no
    longer redirect it to `/api/bots/` (APPEND_SLASH): this only replaces the 404 that is left.
    """

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        # No resolver match: no pattern matched. A view's own 404 (DRF's, in the error format or
        # the browsable API's HTML) is left as the view made it.
        if response.status_code == 404 and request.resolver_match is None and request.path.startswith("/api/"):
            return handler404(request)
        return response


# --- Parsing -------------------------------------------------------------------------------------


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, with a body nested too deeply to decode answered as a 400, not a 500.

    The decoder recurses once per level of nesting, so about a thousand "[" (a few kB) exhaust the
    interpreter's recursion limit: a RecursionError, which DRF's parser does not turn into a
    ParseError as it does a ValueError.
    """

    def parse(
        self, stream: IO[Any], media_type: str | None = None, parser_context: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError("JSON parse error - the document is nested too deeply.") from None


# --- Pagination and throttles ---------------------------------------------------------------------


class Pagination(PageNumberPagination):
    """`?page=N&page_size=M`; page size bounded by API_MAX_PAGE_SIZE. Both are positive integers:
    anything else is a 400 (DRF would quietly use the defaults), as the schema says."""

    page_size_query_param = "page_size"
    last_page_strings = ()

    def get_page_size(self, request: Request) -> int | None:
        from django.conf import settings

        self.page_size = settings.API_PAGE_SIZE
        self.max_page_size = settings.API_MAX_PAGE_SIZE
        _positive_int_param(request, self.page_size_query_param)
        return super().get_page_size(request)

    def get_page_number(self, request: Request, paginator: Any) -> Any:
        _positive_int_param(request, self.page_query_param)
        return super().get_page_number(request, paginator)


def _positive_int_param(request: Request, name: str) -> None:
    raw = request.query_params.get(name)
    if raw is not None and not (raw.isascii() and raw.isdigit() and int(raw) > 0):
        raise exceptions.ValidationError({name: ["A positive integer is required."]})


class _SettingsRateMixin:
    """Read the rate at request time, so settings overrides (tests, reloads) take effect.

    DRF binds THROTTLE_RATES when the class is defined; api_settings is reloaded on change.
    """

    scope: str | None

    def get_rate(self) -> str | None:
        rate = api_settings.DEFAULT_THROTTLE_RATES.get(self.scope or "")
        return None if rate is None else str(rate)


class AnonThrottle(_SettingsRateMixin, AnonRateThrottle):
    pass


class UserThrottle(_SettingsRateMixin, UserRateThrottle):
    pass


class AuthThrottle(_SettingsRateMixin, ScopedRateThrottle):
    """Login, registration and token refresh: per client address, a low rate (password guessing).

    The dashboard's login form counts in the same history (dashboard.views.DashboardLoginView).
    The address is REMOTE_ADDR, or behind `NUM_PROXIES` proxies the one they put in X-Forwarded-For.
    """

    scope = "auth"

    def allow_request(self, request: Request, view: Any) -> bool:
        self.rate = self.get_rate()
        if self.rate is None:
            return True
        num_requests, duration = self.parse_rate(self.rate)
        assert num_requests is not None and duration is not None
        self.num_requests, self.duration = num_requests, duration
        # Keyed by address, not user: these requests are anonymous by nature.
        self.key = self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
        self.history = self.cache.get(self.key, [])
        self.now = self.timer()
        while self.history and self.history[-1] <= self.now - duration:
            self.history.pop()
        if len(self.history) >= num_requests:
            return self.throttle_failure()
        return self.throttle_success()


def unique_for_owner(*, serializer: Any, model: Any, field: str, value: str, message: str) -> str:
    """`value`, stripped, if no other row of the requesting user has it in `field` (else a 400)."""
    value = value.strip()
    if not value:
        raise serializers.ValidationError("This field may not be blank.")
    clash = model.objects.filter(owner_id=serializer.context["request"].user.pk, **{field: value})
    if serializer.instance is not None:
        clash = clash.exclude(pk=serializer.instance.pk)
    if clash.exists():
        raise serializers.ValidationError(message)
    return value
