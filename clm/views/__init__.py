"""Read models that combine several domains for people to look at (the 360° customer view)."""
