from django.contrib import admin

from .models import DataRecord


@admin.register(DataRecord)
class DataRecordAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "value", "created_by", "created_at")
    search_fields = ("name", "created_by")
