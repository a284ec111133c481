"""API routers; the app includes them from one list in `api.app`."""
