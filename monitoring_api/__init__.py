"""monitoring_api: reports, metric history and alerts on production data against the
reference data, read through ml_data_api; models through queue_manager."""
