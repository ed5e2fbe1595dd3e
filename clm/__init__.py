"""CLM: self-hosted Customer Lifecycle Management on a CRM core."""

__version__ = "0.1.0"
