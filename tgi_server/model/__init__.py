"""The model: loading it (or building the built-in tiny one), its text codec, its forward passes."""
