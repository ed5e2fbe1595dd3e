"""Lifecycle stages, stage history, KPIs, funnels and cohort retention."""
