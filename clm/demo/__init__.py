"""A synthetic but realistic business to try CLM on, with the ground truth it was drawn from."""
