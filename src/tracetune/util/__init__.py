"""Small helpers shared by several stages (no imports of other tracetune packages)."""
