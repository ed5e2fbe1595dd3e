"""Customer profiles (the unified view): identities, merges of duplicates, consent."""
