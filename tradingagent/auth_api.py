"""The auth endpoints: register (email + password), JWT login and refresh, and "who am I"."""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.http import Http404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import exceptions, generics, permissions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.tokens import RefreshToken
from rest_framework_simplejwt.views import TokenRefreshView

from core.api import AuthThrottle
from core.auth import authenticate_login

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


class RegisterSerializer(serializers.Serializer[Any]):
    email = serializers.EmailField(max_length=150)
    password = serializers.CharField(write_only=True, max_length=128, style={"input_type": "password"})

    def validate_email(self, value: str) -> str:
        email = User.objects.normalize_email(value).lower()
        if User.objects.filter(email__iexact=email).exists() or User.objects.filter(username__iexact=email).exists():
            raise serializers.ValidationError("A user with this email already exists.")
        return email

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        # Django's validators (length, common, numeric, similarity to the email) on an unsaved user.
        candidate = User(username=attrs["email"], email=attrs["email"])
        try:
            password_validation.validate_password(attrs["password"], user=candidate)
        except DjangoValidationError as exc:
            raise serializers.ValidationError({"password": list(exc.messages)}) from None
        return attrs


def _tokens_for(user: AbstractBaseUser) -> dict[str, str]:
    refresh = RefreshToken.for_user(user)
    return {"refresh": str(refresh), "access": str(refresh.access_token)}


class RegisterView(APIView):
    """Create an account (email + password); answers with the user and a token pair."""

    permission_classes = [permissions.AllowAny]
    authentication_classes: list[type] = []
    throttle_classes = [AuthThrottle]

    @extend_schema(
        request=RegisterSerializer,
        responses={
            201: inline_serializer(
                "RegisterResponse",
                {"user": UserSerializer(), "refresh": serializers.CharField(), "access": serializers.CharField()},
            )
        },
    )
    def post(self, request: Request) -> Response:
        serializer = RegisterSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        email = serializer.validated_data["email"]
        with transaction.atomic():
            # The email is the username: one login name, unique by construction.
            user = User.objects.create_user(username=email, email=email, password=serializer.validated_data["password"])
        logger.info("user %s registered", user.pk)
        return Response({"user": UserSerializer(user).data, **_tokens_for(user)}, status=status.HTTP_201_CREATED)


class LoginSerializer(serializers.Serializer[Any]):
    email = serializers.CharField(max_length=254, help_text="email address (or username)")
    password = serializers.CharField(write_only=True, max_length=128, style={"input_type": "password"})


class TokenObtainView(APIView):
    """Log in with email (or username) and password; answers with a JWT pair (access + refresh)."""

    permission_classes = [permissions.AllowAny]
    authentication_classes: list[type] = []
    throttle_classes = [AuthThrottle]

    def get_authenticate_header(self, request: Request) -> str:
        # Makes a failed login a 401 (with the scheme to use), not DRF's 403 for unauthenticated views.
        return 'Bearer realm="api"'

    @extend_schema(request=LoginSerializer, responses={200: TokenPairSerializer})
    def post(self, request: Request) -> Response:
        serializer = LoginSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = authenticate_login(
            request=request._request,
            login=serializer.validated_data["email"].strip(),
            password=serializer.validated_data["password"],
        )
        if user is None:
            raise exceptions.AuthenticationFailed("No active account with these credentials.")
        return Response(_tokens_for(user))


class TokenRefreshThrottledView(TokenRefreshView):
    """Trade a refresh token for a new access token."""

    throttle_classes = [AuthThrottle]


class MeView(generics.RetrieveAPIView[Any]):
    """The authenticated user."""

    serializer_class = UserSerializer

    def get_object(self) -> Any:
        if not self.request.user.is_authenticated:
            raise Http404
        return self.request.user
