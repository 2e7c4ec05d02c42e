"""HTTP layer: the FastAPI app, its routes and error mapping."""
