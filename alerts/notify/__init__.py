"""Notifications: work-order events pushed to people's chat groups and to other systems.

The audit history in the work-order database is the outbox: a relay per channel reads its new
`created` / `reopened` / `escalated` / `root_cause` events in order and delivers each with
retries, keeping a cursor on disk, so a restart or an unreachable receiver loses nothing.
"""
