"""ground_truth_collector: sends true labels as they arrive, attached to the predictions
they belong to and added to the training data."""
