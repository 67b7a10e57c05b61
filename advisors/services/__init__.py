"""Domain services: plain functions taking plain values and the acting user. They flush but
never commit; the caller (a view, a CLI command or a job) commits once."""
