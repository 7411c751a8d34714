"""queue_manager: not built yet; issue #3 delivers it (see ARCHITECTURE.md for its role)."""
