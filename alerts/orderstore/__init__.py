"""The parts of `alerts.store.WorkOrderStore`, a module per concern; import from `alerts.store`."""
