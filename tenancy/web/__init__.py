"""ASGI and FastAPI integration: the tenant middleware, token verification, problem responses."""
