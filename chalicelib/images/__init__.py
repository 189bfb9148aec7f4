"""Customer images: URL checks, fetching, snapshots, storage billing state."""
