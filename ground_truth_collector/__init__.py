"""ground_truth_collector: not built yet; issue #4 delivers it (see ARCHITECTURE.md)."""
