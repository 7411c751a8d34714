"""queue_manager: owns the model files, the service-to-model bindings and the jobs."""
