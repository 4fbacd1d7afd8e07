"""The weather stage: the air during each outdoor run, from a historical weather archive (``pipeline weather``).

Sits between ingest and analyze and imports only the warehouse and the ground floor. Offline is normal: with
no network, or with the stage switched off, it says so in one line and the rest of ``pipeline run`` goes on.
"""
