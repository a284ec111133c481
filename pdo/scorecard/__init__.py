"""A generic scorecard trainer (optbinning + logistic regression) and its frozen, servable form."""
