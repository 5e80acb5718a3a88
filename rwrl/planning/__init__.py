"""Model-based control pieces for latent-space agents: iLQR and the PCC tasks.

``ilqr``: iterative LQR for ``z' = f(z, u)`` with a quadratic cost, and the receding-horizon
controller that replans from the current latent every step (JAX). ``pcc_tasks``: the planar
system and the inverted pendulum from pixels that PCC is measured on (numpy simulators that
render binary images, with their goal regions and samplers of ``(x, u, x')`` triples).

This package imports only ``rwrl.core``; agents (``rwrl.agents.pcc``) import it, never the
reverse. Its modules load JAX only when imported (this file imports none of them).
"""
