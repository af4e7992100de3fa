"""Authentication and authorisation: passwords, tokens, users, rate limits, who sees what."""
