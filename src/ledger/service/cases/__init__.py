"""The application service's use cases, one module per area, on one core."""
