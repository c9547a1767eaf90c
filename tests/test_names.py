"""Agent names are matched whole: a trailing newline is not part of a name (SPEC section 2)."""

from __future__ import annotations

import pytest

from teamroom.config import Settings
from teamroom.errors import Invalid
from teamroom.tools import _check


def test_a_name_with_a_trailing_newline_is_not_a_valid_agent_name() -> None:
    with pytest.raises(Invalid):
        _check.agent_name("lead\n")
    assert _check.agent_name("lead") == "lead"


def test_teamroom_agent_with_a_trailing_newline_is_refused(tmp_path) -> None:
    with pytest.raises(Invalid):
        Settings.resolve(tmp_path / "db", environ={"TEAMROOM_AGENT": "lead\n"})
    assert Settings.resolve(tmp_path / "db", environ={"TEAMROOM_AGENT": "lead"}).default_agent == "lead"
