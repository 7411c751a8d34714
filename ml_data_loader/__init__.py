"""ml_data_loader: registers a use case and seeds its training and testing tables."""
