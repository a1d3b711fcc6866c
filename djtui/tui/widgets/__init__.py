"""Reusable widgets and dialogs (header, confirm-by-typing, connection error, quit question, export dialogs,
the orphans list). A widget imports services and domain only for types and calls; never a screen module.
"""
