"""The Crossdoc application shell: settings, the wiring of adapters, and the command line."""

__version__ = "0.1.0"
