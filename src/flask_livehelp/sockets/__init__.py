"""The visitor and operator WebSocket endpoints."""
