"""The HTTP adapter: the FastAPI app, authentication, limits and problem documents."""
