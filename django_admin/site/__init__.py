"""The admin's own pages: algorithms, services, retraining and monitoring reports."""
