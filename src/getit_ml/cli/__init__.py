"""The ``getit-ml`` command line: thin typer adapters over the library."""
