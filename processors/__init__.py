"""Domain logic: features, scoring, triggers, messages. Plain typed Python, no faust import."""
