"""Training: run directories, data streamed from the store, one fit loop, the teacher and student stages."""
