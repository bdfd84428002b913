"""Storage: the database pool and migrations, the unit of work with its outbox and inbox, the embedded server,
and the secrets the platform keeps on disk."""
