"""Users, tokens, organizations and memberships."""
