"""The app the docs' examples live in: ``Order`` and ``OrderSerializer`` for the install guide's views
block, which tests/doc_examples.py loads as ``tests.doc_examples_app.views``."""
