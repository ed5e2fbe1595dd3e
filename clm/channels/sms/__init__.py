"""SMS over HTTP."""
