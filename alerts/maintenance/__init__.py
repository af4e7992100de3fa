"""Preventive maintenance: plans per device kind, the scheduler that turns a plan's due time
into a work order, and the evidence that a plan's work was done (docs/maintenance.md)."""
