from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from rest_framework import serializers

from . import usernames
from .models import (
    DESCRIPTION_MAX_LENGTH,
    PAY_MAX_USD,
    PAY_MIN_USD,
    TITLE_MAX_LENGTH,
    USERNAME_KEY_MAX_LENGTH,
    Job,
    JobStatus,
    JobType,
    User,
    UserType,
    validate_new_expiry,
)
from .pagination import MAX_PAGE_SIZE

USERNAME_TAKEN = "A user with that username already exists."
USERNAME_MAX_LENGTH = 150  # AbstractUser.username's


class RegisterSerializer(serializers.ModelSerializer):
    # Checked by validate_username, in its normal form and by its key
    # (jobs.usernames), rather than by the model field's exact-match check.
    username = serializers.CharField(max_length=USERNAME_MAX_LENGTH)
    password = serializers.CharField(write_only=True, style={"input_type": "password"})
    user_type = serializers.ChoiceField(choices=UserType.choices)

    class Meta:
        model = User
        fields = ["id", "username", "password", "user_type", "email"]
        read_only_fields = ["id"]
        extra_kwargs = {"email": {"required": False}}

    def validate_username(self, value: str) -> str:
        """The name as it will be stored (NFKC), refused when it is not a
        valid username, mixes scripts, or is the same name as a user's."""
        name = usernames.normalize(value)
        try:
            User.username_validator(name)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(list(exc.messages), code="invalid") from exc
        key = usernames.username_key(name)
        if len(name) > USERNAME_MAX_LENGTH or len(key) > USERNAME_KEY_MAX_LENGTH:
            raise serializers.ValidationError("This username is too long.", code="max_length")
        if usernames.mixes_scripts(name):
            raise serializers.ValidationError(
                "A username may not mix letters of different scripts.", code="mixed_scripts"
            )
        if User.objects.filter(username_key=key).exists():
            raise serializers.ValidationError(USERNAME_TAKEN, code="unique")
        return name

    def validate(self, attrs: dict) -> dict:
        candidate = User(username=attrs.get("username", ""), email=attrs.get("email", ""))
        try:
            password_validation.validate_password(attrs["password"], user=candidate)
        except DjangoValidationError as exc:
            raise serializers.ValidationError({"password": list(exc.messages)}) from exc
        return attrs

    def create(self, validated_data: dict) -> User:
        # The same name registered at the same moment: the unique key refuses
        # the second insert.
        try:
            with transaction.atomic():
                return User.objects.create_user(**validated_data)
        except IntegrityError as exc:
            raise serializers.ValidationError(
                {"username": [USERNAME_TAKEN]}, code="unique"
            ) from exc


class UserSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ["id", "username", "user_type"]


class MeSerializer(serializers.ModelSerializer):
    """The signed-in user, as GET /api/auth/me/ shows them."""

    class Meta:
        model = User
        fields = ["id", "username", "user_type", "is_staff"]
        read_only_fields = fields


class JobSerializer(serializers.ModelSerializer):
    class Meta:
        model = Job
        fields = [
            "id",
            "title",
            "description",
            "job_type",
            "pay_amount_usd",
            "status",
            "employer",
            "worker",
            "expires_at",
            "payment_released",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [
            "id",
            "status",
            "employer",
            "worker",
            "payment_released",
            "created_at",
            "updated_at",
        ]


class JobCreateSerializer(serializers.Serializer):
    title = serializers.CharField(min_length=1, max_length=TITLE_MAX_LENGTH)
    description = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=DESCRIPTION_MAX_LENGTH
    )
    job_type = serializers.ChoiceField(choices=JobType.choices)
    # DecimalField refuses NaN and infinities, and more than 2 decimals.
    pay_amount_usd = serializers.DecimalField(
        max_digits=12, decimal_places=2, min_value=PAY_MIN_USD, max_value=PAY_MAX_USD
    )
    expires_at = serializers.DateTimeField(required=False, validators=[validate_new_expiry])


class JobListQuerySerializer(serializers.Serializer):
    """The query of GET /api/jobs/: filters and pagination. An empty filter
    value is no filter."""

    status = serializers.ChoiceField(choices=JobStatus.choices, required=False, allow_blank=True)
    job_type = serializers.ChoiceField(choices=JobType.choices, required=False, allow_blank=True)
    mine = serializers.BooleanField(required=False, default=False)
    page = serializers.IntegerField(required=False, min_value=1)
    page_size = serializers.IntegerField(required=False, min_value=1, max_value=MAX_PAGE_SIZE)
