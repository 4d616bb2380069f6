"""Block Kit builders, form parsers and message prose. Pure: domain objects and plain values
in, dicts ready for Slack's Web API out; no client, no database session."""
