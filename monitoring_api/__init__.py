"""monitoring_api: not built yet; issue #4 delivers it (see ARCHITECTURE.md for its role)."""
