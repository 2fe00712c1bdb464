"""The server's default limits, in one place and importable without the web extra, so that
`srgan serve --help` shows the same numbers `create_app` uses."""

__all__ = ["DEFAULT_JOB_LEASE", "DEFAULT_MAX_UPLOAD_MB", "DEFAULT_QUEUE", "DEFAULT_QUEUE_MB",
           "DEFAULT_UPLOAD_DEADLINE", "DEFAULT_UPLOAD_TIMEOUT", "UPLOAD_MAX_PIXELS"]

UPLOAD_MAX_PIXELS = 1_000_000  # input pixels of one upload; x4 gives 16 MP out
DEFAULT_MAX_UPLOAD_MB = 20.0
DEFAULT_QUEUE = 32  # jobs waiting behind the running ones before 503
DEFAULT_QUEUE_MB = 256.0  # uploaded bytes the waiting jobs may hold between them
DEFAULT_JOB_LEASE = 120.0  # s a job may go unasked-about before it is taken as abandoned
DEFAULT_UPLOAD_TIMEOUT = 30.0  # s an upload may stall (no bytes at all) before 408
DEFAULT_UPLOAD_DEADLINE = 300.0  # s a whole upload may take before 408
