"""Where a model goes wrong: a run's mistakes per genre, out-of-fold scores and labels that look wrong."""
