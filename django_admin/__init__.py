"""django_admin: not built yet; issue #6 delivers it (see ARCHITECTURE.md for its role)."""
