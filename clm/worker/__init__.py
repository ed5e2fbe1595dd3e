"""The worker: a plain process that claims due scheduled jobs from the database and runs them."""
