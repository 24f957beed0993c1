"""Remote commands of `rivergen`: they talk to a server over HTTP only, never to a store."""
