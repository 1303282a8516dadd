"""The auth endpoints: register, JWT login, refresh and logout, "who am I", password change and
reset.

Tokens: an access token (JWT_ACCESS_MINUTES) and a refresh token (JWT_REFRESH_DAYS). Both carry a
fingerprint of the password hash (simplejwt's CHECK_REVOKE_TOKEN), so a password change or reset
ends every token issued before it; logout blacklists the refresh token (simplejwt's blacklist).
Logins go through the lockout (tradingagent.logins) like the admin's and the dashboard's.
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth import get_user_model, password_validation, update_session_auth_hash
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from django.utils.encoding import force_str
from django.utils.http import urlsafe_base64_decode
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import exceptions, generics, permissions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.exceptions import AuthenticationFailed, InvalidToken, TokenError
from rest_framework_simplejwt.serializers import TokenRefreshSerializer as SimpleJWTRefreshSerializer
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken
from rest_framework_simplejwt.tokens import RefreshToken, UntypedToken
from rest_framework_simplejwt.utils import get_md5_hash_password
from rest_framework_simplejwt.views import TokenRefreshView

from accounts.forms import PasswordResetForm
from accounts.services import RegistrationClosed, registration_allowed, user_authenticate, user_register
from core.api import AuthThrottle
from tradingagent.logins import lockout_seconds_left

logger = logging.getLogger(__name__)

User = get_user_model()


class UserSerializer(serializers.ModelSerializer[Any]):
    class Meta:
        model = User
        fields = ["id", "username", "email", "date_joined"]
        read_only_fields = fields


class TokenPairSerializer(serializers.Serializer[Any]):
    refresh = serializers.CharField(read_only=True)
    access = serializers.CharField(read_only=True)


class DetailSerializer(serializers.Serializer[Any]):
    detail = serializers.CharField(read_only=True)


def _validate_new_password(password: str, user: Any) -> None:
    # Django's validators (length, common, numeric, similarity to the user's names and email).
    try:
        password_validation.validate_password(password, user=user)
    except DjangoValidationError as exc:
        raise serializers.ValidationError(list(exc.messages)) from None


class RegisterSerializer(serializers.Serializer[Any]):
    email = serializers.EmailField(max_length=150)
    password = serializers.CharField(write_only=True, max_length=128, style={"input_type": "password"})

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        # No check that the email is free here: that answer would tell strangers who has an account.
        email = User.objects.normalize_email(attrs["email"]).lower()
        try:
            _validate_new_password(attrs["password"], User(username=email, email=email))
        except serializers.ValidationError as exc:
            raise serializers.ValidationError({"password": exc.detail}) from None
        return {**attrs, "email": email}


def _tokens_for(user: AbstractBaseUser) -> dict[str, str]:
    refresh = RefreshToken.for_user(user)
    return {"refresh": str(refresh), "access": str(refresh.access_token)}


class RegistrationClosedError(exceptions.PermissionDenied):
    default_detail = "Registration is closed: ask the operator for an account."
    default_code = "registration_closed"


REGISTERED = (
    "If this address had no account, it has one now: get tokens at POST /api/auth/token/. "
    "If it had one, we sent its owner a mail instead."
)


class RegisterView(APIView):
    """Create an account (email + password) when registration is open (ALLOW_REGISTRATION).

    The answer is the same whether or not the address already had an account (the owner of an
    existing one is told by mail), so it does not reveal who has an account; then log in with
    POST /api/auth/token/.
    """

    permission_classes = [permissions.AllowAny]
    authentication_classes: list[type] = []
    throttle_classes = [AuthThrottle]

    @extend_schema(
        request=RegisterSerializer,
        responses={
            202: inline_serializer(
                "RegisterResponse", {"email": serializers.EmailField(), "detail": serializers.CharField()}
            )
        },
    )
    def post(self, request: Request) -> Response:
        if not registration_allowed():
            raise RegistrationClosedError()
        serializer = RegisterSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        email = serializer.validated_data["email"]
        try:
            user_register(email=email, password=serializer.validated_data["password"], request=request._request)
        except RegistrationClosed:
            raise RegistrationClosedError() from None
        return Response({"email": email, "detail": REGISTERED}, status=status.HTTP_202_ACCEPTED)


class LoginSerializer(serializers.Serializer[Any]):
    email = serializers.CharField(max_length=254, help_text="email address (or username)")
    password = serializers.CharField(write_only=True, max_length=128, style={"input_type": "password"})


class LockedOut(exceptions.APIException):
    """Too many failed logins from this address or for this account (django-axes)."""

    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_code = "locked_out"

    def __init__(self, wait: int) -> None:
        super().__init__(
            "Too many failed login attempts from this address or for this account. "
            f"Logins are locked for {wait} seconds."
        )
        self.wait = wait  # DRF's exception handler sends it as Retry-After


class TokenObtainView(APIView):
    """Log in with email (or username) and password; answers with a JWT pair (access + refresh).

    Failed logins count toward the lockout shared with the admin and the dashboard: after
    LOGIN_FAILURE_LIMIT failures from one address or for one account, logins there answer 429
    (code `locked_out`, with Retry-After) for LOGIN_LOCKOUT_MINUTES, the right password included.
    """

    permission_classes = [permissions.AllowAny]
    authentication_classes: list[type] = []
    throttle_classes = [AuthThrottle]

    def get_authenticate_header(self, request: Request) -> str:
        # Makes a failed login a 401 (with the scheme to use), not DRF's 403 for unauthenticated views.
        return 'Bearer realm="api"'

    @extend_schema(
        request=LoginSerializer,
        responses={
            200: TokenPairSerializer,
            401: OpenApiResponse(description="Wrong email/username or password, or an inactive account."),
        },
    )
    def post(self, request: Request) -> Response:
        serializer = LoginSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        login = serializer.validated_data["email"].strip()
        user = user_authenticate(request=request._request, login=login, password=serializer.validated_data["password"])
        if getattr(request._request, "axes_locked_out", False):
            raise LockedOut(lockout_seconds_left(request._request, {"username": login}))
        if user is None:
            raise exceptions.AuthenticationFailed("No active account with these credentials.")
        return Response(_tokens_for(user))


class TokenRefreshSerializer(SimpleJWTRefreshSerializer):
    """simplejwt's, answering 401 (not a 500) for a deleted user, and refusing a token issued before
    the last password change, for an inactive user, or blacklisted by a logout."""

    def validate(self, attrs: dict[str, Any]) -> dict[str, str]:
        refresh = self.token_class(attrs["refresh"])  # signature, expiry, blacklist: TokenError → 401
        user_id = refresh.payload.get(jwt_settings.USER_ID_CLAIM)
        user = User.objects.filter(**{jwt_settings.USER_ID_FIELD: user_id}).first() if user_id else None
        if user is None or not jwt_settings.USER_AUTHENTICATION_RULE(user):
            raise AuthenticationFailed("No active account found for the given token.", "no_active_account")
        if refresh.payload.get(jwt_settings.REVOKE_TOKEN_CLAIM) != get_md5_hash_password(user.password):
            raise AuthenticationFailed("The user's password has been changed.", "password_changed")
        return super().validate(attrs)


class TokenRefreshThrottledView(TokenRefreshView):
    """Trade a refresh token for a new access token."""

    throttle_classes = [AuthThrottle]

    @extend_schema(
        responses={
            200: inline_serializer("TokenRefresh", {"access": serializers.CharField()}),
            401: OpenApiResponse(
                description="The token is invalid, expired, revoked (logout), older than a password change, "
                "or its user is gone or inactive."
            ),
        }
    )
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().post(request, *args, **kwargs)


class LogoutSerializer(serializers.Serializer[Any]):
    refresh = serializers.CharField(help_text="the refresh token to revoke")


class LogoutView(APIView):
    """Log out: blacklist the refresh token so it can no longer be refreshed (a repeat is harmless).

    Access tokens expire on their own within JWT_ACCESS_MINUTES; a password change ends them at once.
    """

    permission_classes = [permissions.AllowAny]
    authentication_classes: list[type] = []
    throttle_classes = [AuthThrottle]

    def get_authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'  # an invalid token is a 401, not DRF's 403

    @extend_schema(
        request=LogoutSerializer,
        responses={204: None, 401: OpenApiResponse(description="Not a valid, unexpired refresh token.")},
    )
    def post(self, request: Request) -> Response:
        serializer = LogoutSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        raw = serializer.validated_data["refresh"]
        try:
            RefreshToken(raw).blacklist()
        except TokenError as exc:
            if not _blacklisted_refresh(raw):
                raise InvalidToken({"detail": str(exc)}) from None
        return Response(status=status.HTTP_204_NO_CONTENT)


def _blacklisted_refresh(raw: str) -> bool:
    """A genuine, unexpired refresh token that a logout already blacklisted."""
    try:
        token = UntypedToken(raw)  # type: ignore[arg-type]
    except TokenError:
        return False
    return (
        token.get(jwt_settings.TOKEN_TYPE_CLAIM) == "refresh"
        and BlacklistedToken.objects.filter(token__jti=token.get(jwt_settings.JTI_CLAIM)).exists()
    )


class PasswordChangeSerializer(serializers.Serializer[Any]):
    old_password = serializers.CharField(write_only=True, max_length=128, style={"input_type": "password"})
    new_password = serializers.CharField(write_only=True, max_length=128, style={"input_type": "password"})


class PasswordChangeView(APIView):
    """Change your password. Every token issued before (and every other session) stops working;
    the answer carries a new token pair."""

    throttle_classes = [AuthThrottle]

    @extend_schema(request=PasswordChangeSerializer, responses={200: TokenPairSerializer})
    def post(self, request: Request) -> Response:
        serializer = PasswordChangeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user: Any = request.user
        # Through authenticate, so guessing the old password with a stolen token meets the lockout.
        checked = user_authenticate(
            request=request._request, login=user.get_username(), password=serializer.validated_data["old_password"]
        )
        if getattr(request._request, "axes_locked_out", False):
            raise LockedOut(lockout_seconds_left(request._request, {"username": user.get_username()}))
        if checked is None or checked.pk != user.pk:
            raise serializers.ValidationError({"old_password": ["The current password is wrong."]})
        new_password = serializer.validated_data["new_password"]
        try:
            _validate_new_password(new_password, user)
        except serializers.ValidationError as exc:
            raise serializers.ValidationError({"new_password": exc.detail}) from None
        user.set_password(new_password)
        user.save(update_fields=["password"])
        if request._request.session.session_key and request.user.is_authenticated:
            update_session_auth_hash(request._request, user)  # this browser session stays logged in
        logger.info("user %s changed their password", user.pk)
        return Response(_tokens_for(user))


class PasswordResetSerializer(serializers.Serializer[Any]):
    email = serializers.EmailField(max_length=254)


PASSWORD_RESET_SENT = "If an account has this address, a mail with a reset link is on its way."


class PasswordResetView(APIView):
    """Ask for a password reset mail. The answer is the same whether or not the address has an
    account; the mail carries a link (and the uid and token for POST /api/auth/password/reset/confirm/)."""

    permission_classes = [permissions.AllowAny]
    authentication_classes: list[type] = []
    throttle_classes = [AuthThrottle]

    @extend_schema(request=PasswordResetSerializer, responses={202: DetailSerializer})
    def post(self, request: Request) -> Response:
        serializer = PasswordResetSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        form = PasswordResetForm(data={"email": serializer.validated_data["email"]})
        if form.is_valid():
            form.save_for(request._request)
        return Response({"detail": PASSWORD_RESET_SENT}, status=status.HTTP_202_ACCEPTED)


class PasswordResetConfirmSerializer(serializers.Serializer[Any]):
    uid = serializers.CharField(max_length=64)
    token = serializers.CharField(max_length=128)
    new_password = serializers.CharField(write_only=True, max_length=128, style={"input_type": "password"})


class PasswordResetConfirmView(APIView):
    """Set a new password with the uid and token of a reset mail (valid once, for
    PASSWORD_RESET_TIMEOUT_MINUTES). Every earlier token and session stops working."""

    permission_classes = [permissions.AllowAny]
    authentication_classes: list[type] = []
    throttle_classes = [AuthThrottle]

    @extend_schema(request=PasswordResetConfirmSerializer, responses={200: DetailSerializer})
    def post(self, request: Request) -> Response:
        serializer = PasswordResetConfirmSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        user = _user_of_uid(data["uid"])
        if user is None or not default_token_generator.check_token(user, data["token"]):
            raise serializers.ValidationError({"token": ["This reset link is invalid or was used already."]})
        try:
            _validate_new_password(data["new_password"], user)
        except serializers.ValidationError as exc:
            raise serializers.ValidationError({"new_password": exc.detail}) from None
        user.set_password(data["new_password"])
        user.save(update_fields=["password"])
        logger.info("user %s reset their password", user.pk)
        return Response({"detail": "Your password was changed: log in with the new one."})


def _user_of_uid(uid: str) -> Any:
    try:
        pk = force_str(urlsafe_base64_decode(uid))
        return User._default_manager.filter(pk=int(pk), is_active=True).first()
    except (TypeError, ValueError, OverflowError):
        return None


class MeView(generics.RetrieveAPIView[Any]):
    """The authenticated user."""

    serializer_class = UserSerializer

    def get_object(self) -> Any:
        if not self.request.user.is_authenticated:
            raise Http404
        return self.request.user
