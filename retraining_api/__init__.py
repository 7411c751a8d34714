"""retraining_api: not built yet; issue #5 delivers it (see ARCHITECTURE.md for its role)."""
