"""adc.config: load, validate and compile adc.yaml; keep its revisions."""
