"""Where posts come from: JSONL replay and stdin (``replay``), Bluesky Jetstream, Mastodon, X filtered stream."""
