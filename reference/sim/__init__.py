"""The simulator: an adversarial network over the state machines; scenarios, transcripts, demo."""
