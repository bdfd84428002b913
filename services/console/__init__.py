"""The console: the web application people use (companies, ministry operators, task forces, field officers).

A backend-for-frontend: it signs people in at the identity provider, keeps their tokens in a server-side session,
and calls the services' public HTTP APIs with the signed-in person's token. It owns no domain data.
"""
