"""Getting data: `srgan data download div2k DIR` (training; resumable, verified, extracted) and
`srgan data download set5|set14 DIR` (the benchmark sets, checked image by image)."""

__all__: list[str] = []
