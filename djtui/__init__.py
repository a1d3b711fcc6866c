"""djtui: a terminal app and CLI for the people who keep a DataJoint lab healthy."""

__version__ = "0.1.0"
