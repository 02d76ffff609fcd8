"""The REST API v2 (SPEC §9): router, authentication, permissions, errors and schema.

Each app's resources live in its own ``api/`` package; this package only
mounts them and holds what they share.
"""
