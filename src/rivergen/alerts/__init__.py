"""Alerts: channels, rules, the down/recovered state machine, the outbox and its dispatcher."""
