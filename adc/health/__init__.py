"""adc.health: active health checks and member states."""
