"""dandelion.update (grows as the library's issues land)."""

__all__: list[str] = []
