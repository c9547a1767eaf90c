"""The tools as plain async functions ``(store, arguments) -> schema``: no MCP in here.

The server and the CLI both call these, so there is one code path for agents and humans.
"""
