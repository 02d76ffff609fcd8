"""Simulated OCPP 1.6-J charging stations and EVs, for demos, commissioning dry runs and tests."""
