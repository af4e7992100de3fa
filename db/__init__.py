"""The product's SQL database, shared by work orders, users and notifications.

`engine` makes engines and write transactions, `schema` declares the tables, `migrate` runs the
Alembic revisions in `migrations/`, `errors` is what it raises. It knows tables, not what their
rows mean: the rules live with the stores above it (`alerts.store`, `api.auth.users`, ...).
"""
