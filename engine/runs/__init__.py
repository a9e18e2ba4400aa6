"""Training runs: train -> evaluate -> save -> record (`experiment`), checkpoints and the runs
database (`store`), background jobs (`jobs`) and the demo plan (`demo`)."""
