"""The HTTP side every service shares: problems, request logging, operations routes, access control."""
