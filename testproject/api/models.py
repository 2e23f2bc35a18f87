"""service-b's data: what machine clients read (read:data) and write (write:data)."""

from django.db import models


class DataRecord(models.Model):
    name = models.CharField(max_length=100)
    value = models.CharField(max_length=200)
    created_by = models.CharField(max_length=255, blank=True, help_text="client_id of the writer")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "data record"
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.name}={self.value}"
