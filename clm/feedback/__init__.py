"""Feedback and customer service: surveys (NPS, CSAT, free text), support tickets with SLAs,
and follow-up tasks for people (回访)."""
