"""The built-in checks, one module each; they register themselves with ``@check`` on import."""
