"""The demo behind the README's first command: ``python -m dandelion.demo``."""
