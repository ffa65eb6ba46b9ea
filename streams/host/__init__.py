"""The stream host's parts, each one concept: the processor contract, the clock, the checkpoint
(commit sequence), restore (read a topic to its end) and an in-process test harness."""
