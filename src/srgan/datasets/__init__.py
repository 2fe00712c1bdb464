"""Getting training data: `srgan data download div2k DIR` (resumable, verified, extracted)."""
