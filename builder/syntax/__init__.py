"""Dockerfile text → typed AST (builder.syntax.nodes). The only package that imports lark."""
