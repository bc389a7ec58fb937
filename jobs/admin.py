from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from .models import Job, User


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ["username", "email", "user_type", "is_staff", "is_active"]
    list_filter = ["user_type", "is_staff", "is_active"]
    fieldsets = [
        *(DjangoUserAdmin.fieldsets or ()),
        ("PayChain", {"fields": ["user_type"]}),
    ]
    add_fieldsets = [
        *DjangoUserAdmin.add_fieldsets,
        ("PayChain", {"fields": ["user_type"]}),
    ]


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "title",
        "status",
        "job_type",
        "pay_amount_usd",
        "employer",
        "worker",
        "expires_at",
        "payment_released",
    ]
    list_filter = ["status", "job_type"]
    search_fields = ["title"]
    readonly_fields = ["created_at", "updated_at"]
    list_select_related = ["employer", "worker"]
    raw_id_fields = ["employer", "worker"]
