"""HTTP hardening of the API: body limits and a safe JSON decode, security headers, the real
client behind trusted proxies. Pure ASGI (no BaseHTTPMiddleware: no task per request)."""
