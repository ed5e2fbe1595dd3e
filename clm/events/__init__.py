"""Customer events: schema, validation, idempotent ingestion (API and bulk files), timelines."""
