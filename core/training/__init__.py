"""Training support: the saved train/validation/test split, decision thresholds and honest metrics."""
