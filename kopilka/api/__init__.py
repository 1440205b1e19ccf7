"""The HTTP adapter: FastAPI routes over the services."""
