"""Test bodies that run in a fresh interpreter (see ``tests/isolated.py``).

Nothing here may import ``conftest`` or pytest: a case starts from a process
that has done only what its module does at import.
"""
