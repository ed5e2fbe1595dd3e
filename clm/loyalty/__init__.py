"""Loyalty programme: an append-only points ledger, tiers with perks, the programme as data."""
