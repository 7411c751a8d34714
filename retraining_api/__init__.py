"""retraining_api: retraining and explainer dashboards as background jobs, champion /
challenger comparison, promotion and rollback through queue_manager."""
