"""The speechqa service: settings, storage, ingestion, the core facade, HTTP API and CLI."""
