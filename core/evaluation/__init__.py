"""Where a trained model goes wrong: the mistake galleries read from a run's saved predictions, and the
out-of-fold scores behind "labels that look wrong".

May import: `core.data`, `core.corrections`, `core.model`, `core.training` and the foundation.
"""
