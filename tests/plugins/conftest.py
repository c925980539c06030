"""Fixtures of the editor-bridge tests."""

from __future__ import annotations

import pytest

from tests.plugins.editor_harness import EDITORS, need


@pytest.fixture(params=sorted(EDITORS))
def editor_program(request: pytest.FixtureRequest) -> list[str]:
    """Each real editor in turn (skipped where it or tmux is not installed)."""
    need(request.param, "tmux")
    return EDITORS[request.param]
