"""Getting training data: `srgan data download div2k DIR` (resumable, verified, extracted)."""

__all__: list[str] = []
