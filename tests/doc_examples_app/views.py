"""The install guide's views block, executed here as this module: the docs are the source, not a copy."""

from tests.doc_examples import the_views_example

_example = the_views_example()
exec(compile(_example.code, str(_example.path), "exec"), globals())  # noqa: S102 - our own documentation
