"""isolate's benchmark suite: ``python -m benchmarks [--quick] [--out DIR]``. See README.md here."""
