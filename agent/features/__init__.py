"""What a support team uses beside the turn engine: the hand-off desk, batch triage, customer
identity tokens, transcripts, usage and cost, and customers' photos."""
