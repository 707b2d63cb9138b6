"""The read-only REST API (django-ninja): personal tokens, the same access rules as the pages."""
