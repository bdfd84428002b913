"""The `iomki` command line: `app` and one module per command group."""
