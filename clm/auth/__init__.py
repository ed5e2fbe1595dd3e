"""Who may do what: API keys with roles, and the audit log."""
