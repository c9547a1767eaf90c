"""teamroom: a coordination server for teams of AI coding agents, over MCP."""

from teamroom.errors import TeamroomError

__version__ = "0.1.0"

__all__ = ["TeamroomError", "__version__"]
