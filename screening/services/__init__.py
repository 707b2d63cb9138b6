"""Every write of the application: `<noun>_<verb>` functions, keyword-only, atomic, audited."""
