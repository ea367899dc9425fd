"""Identity and permission rules: tokens, passwords, principals, access decisions.

Pure and dependency-free within Crossdoc: used by every other package, uses none.
"""
