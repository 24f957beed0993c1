"""HTTP plumbing: envelope, error handlers, auth dependencies, mounting of domain routers."""
