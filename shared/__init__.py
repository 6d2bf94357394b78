"""Code shared by the HTTP app, the relay and the workers: config, Redis, keys, auth, errors."""
