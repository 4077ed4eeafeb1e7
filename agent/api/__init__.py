"""The HTTP API: an app factory, dependencies, and one router per resource."""
