"""Tasks: a domain on the batched engine, and the batched env protocol above it.

``BatchedTask`` (``rwrl.tasks.task``) is the first implementation of
``BatchedEnv`` (``rwrl.tasks.protocol``); the challenge layer is the second.
"""
