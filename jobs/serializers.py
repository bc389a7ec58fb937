from decimal import Decimal

from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from .models import Job, User, UserType


class RegisterSerializer(serializers.ModelSerializer):
    password = serializers.CharField(write_only=True, style={"input_type": "password"})
    user_type = serializers.ChoiceField(choices=UserType.choices)

    class Meta:
        model = User
        fields = ["id", "username", "password", "user_type", "email"]
        read_only_fields = ["id"]
        extra_kwargs = {"email": {"required": False}}

    def validate(self, attrs: dict) -> dict:
        candidate = User(username=attrs.get("username", ""), email=attrs.get("email", ""))
        try:
            password_validation.validate_password(attrs["password"], user=candidate)
        except DjangoValidationError as exc:
            raise serializers.ValidationError({"password": list(exc.messages)}) from exc
        return attrs

    def create(self, validated_data: dict) -> User:
        return User.objects.create_user(**validated_data)


class UserSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ["id", "username", "user_type"]


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
    title = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    job_type = serializers.SlugField(max_length=50)
    pay_amount_usd = serializers.DecimalField(
        max_digits=12, decimal_places=2, min_value=Decimal("0.01")
    )
    expires_at = serializers.DateTimeField(required=False)
