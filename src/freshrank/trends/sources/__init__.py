"""Where posts come from: JSONL replay and stdin, Bluesky Jetstream, Mastodon streaming, X filtered stream."""
