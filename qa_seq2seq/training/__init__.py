"""Training: the LightningModule, schedules, weight averaging, warm starts, resumable runs and
atomic checkpoint writes, and the composed training config. The entry point is ``train.py``."""
