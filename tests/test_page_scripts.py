"""What every page script must not do: leave a bare expression that Streamlit's magic would show.

Streamlit writes the value of any expression statement in a page script (functions included) to the
page. A bare `a.caption(x) if x else a.empty()` showed a table of a DeltaGenerator's methods on the
Image GAN page once every live loop; calls themselves are not shown, other expressions are.
"""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((ROOT / "pages").glob("*.py")) + [ROOT / "streamlit_app.py"]
LEFT_ALONE = (ast.Call, ast.Await, ast.Yield, ast.YieldFrom)   # expressions magic does not show


def docstrings(tree: ast.Module) -> set[int]:
    """The ids of the docstring statements (the first string of a module, class or function)."""
    out = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            out.add(id(body[0]))
    return out


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_no_bare_expression_whose_value_the_page_would_show(script):
    tree = ast.parse(script.read_text())
    skip = docstrings(tree)
    bare = [f"line {node.lineno}: {ast.unparse(node)[:80]}" for node in ast.walk(tree)
            if isinstance(node, ast.Expr) and id(node) not in skip and not isinstance(node.value, LEFT_ALONE)]
    assert not bare, bare
