from django.contrib import admin

from . import models

admin.site.register(models.Review)
admin.site.register(models.Membership)
admin.site.register(models.AuditEvent)
