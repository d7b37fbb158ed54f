"""One router per resource: jobs, tasks, health."""
