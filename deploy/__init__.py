"""Deployment support: the compose end-to-end check (deploy/ci/), the Docker build helpers
(deploy/docker/), and the stack run as local processes (deploy/local/)."""
