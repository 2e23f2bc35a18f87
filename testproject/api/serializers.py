from rest_framework import serializers

from .models import DataRecord


class DataRecordSerializer(serializers.ModelSerializer):
    class Meta:
        model = DataRecord
        fields = ["id", "name", "value", "created_by", "created_at"]
        read_only_fields = ["id", "created_by", "created_at"]
