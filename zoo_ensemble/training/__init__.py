"""Training: losses, schedule, resumable checkpoints, the trainer, and model fitting."""
