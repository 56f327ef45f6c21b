"""What the library tells operators: unit-of-work observers for traces and metrics."""
